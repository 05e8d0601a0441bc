# The Debian package (`make package`, CPack's DEB generator): the binary, its man page, the
# service's config and unit, the maintainer scripts in packaging/debian. Included by the
# top-level CMakeLists.txt after the `herald` target; docs/deployment.md says what the
# package does on install and purge.
set(pkg_dir ${PROJECT_SOURCE_DIR}/packaging)

# herald(1) from the built binary's --help texts (cmake/manpage.cmake).
set(man_page ${CMAKE_CURRENT_BINARY_DIR}/man/herald.1.gz)
add_custom_command(OUTPUT ${man_page}
    COMMAND ${CMAKE_COMMAND} -DHERALD=$<TARGET_FILE:herald> -DVERSION=${PROJECT_VERSION}
        -DOUT=${man_page} -P ${PROJECT_SOURCE_DIR}/cmake/manpage.cmake
    DEPENDS herald ${PROJECT_SOURCE_DIR}/cmake/manpage.cmake
    COMMENT "Writing herald(1) from herald --help")
add_custom_target(herald_man ALL DEPENDS ${man_page})

# The changelog's newest entry must be this version: a version bump without an entry stops
# here rather than shipping a package whose changelog names another version.
file(STRINGS ${pkg_dir}/debian/changelog changelog_top LIMIT_COUNT 1)
if(NOT changelog_top MATCHES "^herald \\(${PROJECT_VERSION}\\) ")
    message(FATAL_ERROR "packaging/debian/changelog: the newest entry is '${changelog_top}', "
        "not herald (${PROJECT_VERSION}); add an entry for this version")
endif()
set(changelog_gz ${CMAKE_CURRENT_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(OUTPUT ${changelog_gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/packaging
    COMMAND gzip -9nc ${pkg_dir}/debian/changelog > ${changelog_gz}
    DEPENDS ${pkg_dir}/debian/changelog
    COMMENT "Compressing the package's changelog")
add_custom_target(herald_changelog ALL DEPENDS ${changelog_gz})

# Destinations under /usr are relative to the packaging prefix (/usr); /etc and /lib are
# absolute, where Debian puts them.
install(TARGETS herald RUNTIME DESTINATION bin)
install(FILES ${man_page} DESTINATION share/man/man1)
install(FILES ${pkg_dir}/debian/copyright ${changelog_gz} DESTINATION share/doc/herald)
install(FILES ${pkg_dir}/herald.toml DESTINATION /etc/herald
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${pkg_dir}/herald.service DESTINATION /lib/systemd/system)

set(HERALD_PACKAGE_MAINTAINER "herald maintainers <maintainers@herald.invalid>"
    CACHE STRING "The Maintainer: field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME herald)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Server-Sent Events hub")
set(CPACK_PACKAGE_DESCRIPTION
    "herald holds many long-lived HTTP connections and pushes events down them.
Backends publish with a plain HTTP POST, `herald pub` or a line on stdin;
browsers subscribe with EventSource. The hub keeps recent events (in memory,
SQLite or Redis), so a client that reconnects with Last-Event-ID misses
nothing and receives nothing twice.
.
This package runs it as a systemd service under its own user, with its
history in SQLite under /var/lib/herald.")
set(CPACK_PACKAGE_CONTACT "${HERALD_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${HERALD_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
# Depends: the shared libraries' packages (dpkg-shlibdeps, from dpkg-dev), and adduser for
# the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${pkg_dir}/debian/conffiles ${pkg_dir}/debian/postinst ${pkg_dir}/debian/prerm
    ${pkg_dir}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
