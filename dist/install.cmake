# install.cmake - what `cmake --install` puts where (GNU directories under
# CMAKE_INSTALL_PREFIX; the Debian package installs with the prefix /usr):
#
#   bin/cairn                          the command and daemon
#   sbin/mount.cairn                   mount(8)'s helper: a link to cairn
#   LIBDIR/libcairn.so.1 (.so, .a)     the native API, soname libcairn.so.1
#   LIBDIR/cairn/libcairn-preload.so   the preload shim of `cairn run`
#   LIBDIR/pkgconfig/cairn.pc          pkg-config --cflags --libs cairn
#   include/cairn.h
#   share/man/man1/cairn.1, man8/mount.cairn.8
#   lib/systemd/system/cairn@.service  (under the prefix; /lib for /usr)
#   share/bash-completion/completions/cairn

install(TARGETS cairn-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS cairn_shared
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_SKIP COMPONENT runtime)
install(TARGETS cairn_shared
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_ONLY COMPONENT dev)
install(TARGETS cairn ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES include/cairn.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(TARGETS cairn-preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/cairn)

configure_file(dist/cairn.pc.in ${CMAKE_BINARY_DIR}/cairn.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cairn.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

install(FILES docs/cairn.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES dist/mount.cairn.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES dist/bash-completion/cairn
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# systemd looks for units in /lib/systemd/system (Debian) whatever the
# prefix of the package; a prefix of its own keeps them under it.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(CAIRN_UNIT_DIR /lib/systemd/system)
else()
  set(CAIRN_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
configure_file(dist/cairn@.service.in ${CMAKE_BINARY_DIR}/cairn@.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cairn@.service DESTINATION ${CAIRN_UNIT_DIR})

# mount.cairn is the cairn command under another name (src/cli/mount_helper.c),
# linked relatively so that the tree may be moved whole.
file(RELATIVE_PATH CAIRN_SBIN_TO_BIN ${CMAKE_INSTALL_FULL_SBINDIR}
  ${CMAKE_INSTALL_FULL_BINDIR}/cairn)
install(CODE "
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SBINDIR}\")
  file(CREATE_LINK \"${CAIRN_SBIN_TO_BIN}\"
    \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SBINDIR}/mount.cairn\" SYMBOLIC)
  message(STATUS \"Installing: \$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SBINDIR}/mount.cairn -> ${CAIRN_SBIN_TO_BIN}\")
")
