# What every netsec rp2 board adds to the MicroPython board it is layered on. A board's
# mpconfigboard.cmake sets NETSEC_UPSTREAM_BOARD and includes this; its mpconfigboard.h includes
# the upstream board's header, and its pins.csv is a link to the upstream board's.
set(NETSEC_RP2_COMMON ${CMAKE_CURRENT_LIST_DIR})
include(${MICROPY_PORT_DIR}/boards/${NETSEC_UPSTREAM_BOARD}/mpconfigboard.cmake)

# Bluetooth off: netsec does not use it, and btstack is not among the pinned sources.
set(MICROPY_PY_BLUETOOTH OFF)
set(MICROPY_BLUETOOTH_BTSTACK OFF)
set(MICROPY_PY_BLUETOOTH_CYW43 OFF)

# netsec and Net_Security frozen in; the netsec mbedTLS profile.
set(MICROPY_FROZEN_MANIFEST ${NETSEC_RP2_COMMON}/manifest.py)
set(MBEDTLS_CONFIG_FILE ${NETSEC_RP2_COMMON}/mbedtls_config_board.h)

# The speed-critical mbedTLS files at -O2, as on every netsec image. speed.mk names them once.
set(NETSEC_SPEED_MK ${NETSEC_RP2_COMMON}/../../firmware/mbedtls/speed.mk)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${NETSEC_SPEED_MK})
file(READ ${NETSEC_SPEED_MK} NETSEC_SPEED_TEXT)
string(REGEX MATCH "NETSEC_MBEDTLS_SPEED_FILES = ([a-z0-9_ ]+)" _ "${NETSEC_SPEED_TEXT}")
string(REPLACE " " ";" NETSEC_SPEED_FILES "${CMAKE_MATCH_1}")
foreach(name ${NETSEC_SPEED_FILES})
    set_source_files_properties(${MICROPY_DIR}/lib/mbedtls/library/${name}.c PROPERTIES COMPILE_OPTIONS -O2)
endforeach()

# The mbedTLS sources the profile needs beyond MicroPython's list (PSA crypto, TLS 1.3): sources.mk
# names them once. Deferred: the port's CMakeLists.txt makes the target after including this file.
set(NETSEC_SOURCES_MK ${NETSEC_RP2_COMMON}/../../firmware/mbedtls/sources.mk)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${NETSEC_SOURCES_MK})
file(READ ${NETSEC_SOURCES_MK} NETSEC_SOURCES_TEXT)
string(REGEX MATCHALL "[a-z0-9_]+\\.c" NETSEC_MBEDTLS_SOURCES "${NETSEC_SOURCES_TEXT}")
list(TRANSFORM NETSEC_MBEDTLS_SOURCES PREPEND ${MICROPY_DIR}/lib/mbedtls/library/)
cmake_language(DEFER CALL target_sources ${MICROPY_TARGET} PRIVATE ${NETSEC_MBEDTLS_SOURCES}
    ${NETSEC_RP2_COMMON}/../../firmware/mbedtls/netsec_alloc.c) # mbedTLS's allocator

# The pico-sdk adds one C++ file (operator new and delete on malloc), so CMake would link with
# g++, which wants Arm's libstdc++ (a 300 MB Debian package) although nothing uses it: link with
# the C driver, and name the maths library g++ would have added. Deferred: the port's
# CMakeLists.txt makes the target after including this file.
cmake_language(DEFER CALL set_target_properties ${MICROPY_TARGET} PROPERTIES LINKER_LANGUAGE C)
cmake_language(DEFER CALL target_link_libraries ${MICROPY_TARGET} m)

# The port regenerates its qstrs only when a source file changes, not a board header: a module
# switched on in mpconfigboard.h would then miss its names. Make the board headers count too.
cmake_language(DEFER CALL add_custom_command OUTPUT ${CMAKE_BINARY_DIR}/genhdr/qstr.i.last APPEND
    DEPENDS ${MICROPY_BOARD_DIR}/mpconfigboard.h ${NETSEC_RP2_COMMON}/mpconfigboard_netsec.h)
