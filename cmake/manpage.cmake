# Writes herald(1), gzipped, from what the built binary prints for `--help` and each
# subcommand's `--help`, so the manual says what the binary does and never falls behind.
# Written here rather than with help2man: CLI11's help lists subcommands in a section of
# its own, which help2man would set as one paragraph.
#   cmake -DHERALD=path/to/herald -DVERSION=x.y.z -DOUT=herald.1.gz -P manpage.cmake
foreach(var HERALD VERSION OUT)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "manpage.cmake: -D${var}=... is required")
    endif()
endforeach()

# `herald ARGS --help`, with the binary's path in the usage line spelled `herald`.
function(help_of out)
    execute_process(COMMAND ${HERALD} ${ARGN} --help
        OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR text STREQUAL "")
        message(FATAL_ERROR "manpage.cmake: `herald ${ARGN} --help` failed (${rc}): ${err}")
    endif()
    string(REPLACE "${HERALD}" "herald" text "${text}")
    set(${out} "${text}" PARENT_SCOPE)
endfunction()

# Text as roff reads it literally: backslashes escaped, minus signs as such, and a line that
# starts with a control character (. or ') kept as text.
function(roff_escape out text)
    string(REPLACE "\\" "\\e" text "${text}")
    string(REPLACE "-" "\\-" text "${text}")
    string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
    set(${out} "${text}" PARENT_SCOPE)
endfunction()

help_of(top)
string(FIND "${top}" "Usage:" usage_at)
if(usage_at LESS 1)
    message(FATAL_ERROR "manpage.cmake: no description before Usage: in `herald --help`")
endif()
string(SUBSTRING "${top}" 0 ${usage_at} description)
string(SUBSTRING "${top}" ${usage_at} -1 top_usage)
string(STRIP "${description}" description)
# The first line, "herald: SUMMARY.", is the NAME line; the rest is the description.
if(NOT description MATCHES "^herald: ([^\n]*)\n(.*)$")
    message(FATAL_ERROR "manpage.cmake: `herald --help` does not open with \"herald: SUMMARY\"")
endif()
set(summary "${CMAKE_MATCH_1}")
set(description "${CMAKE_MATCH_2}")
string(REGEX REPLACE "\\.$" "" summary "${summary}")

# The subcommands: the indented names under "Subcommands:".
string(FIND "${top}" "\nSubcommands:\n" sub_at)
if(sub_at LESS 0)
    message(FATAL_ERROR "manpage.cmake: no Subcommands: section in `herald --help`")
endif()
string(SUBSTRING "${top}" ${sub_at} -1 sub_section)
string(REGEX MATCHALL "\n  [a-z][a-z0-9-]*" names "${sub_section}")
set(subcommands "")
foreach(name ${names})
    string(STRIP "${name}" name)
    list(APPEND subcommands ${name})
endforeach()
if(NOT subcommands)
    message(FATAL_ERROR "manpage.cmake: no subcommand found in `herald --help`")
endif()

roff_escape(summary_r "${summary}")
roff_escape(description_r "${description}")
string(REPLACE "\n" " " description_r "${description_r}")
roff_escape(top_usage_r "${top_usage}")
set(page ".TH HERALD 1 \"\" \"herald ${VERSION}\" \"User Commands\"
.SH NAME
herald \\- ${summary_r}
.SH SYNOPSIS
.B herald
[\\fISUBCOMMAND\\fR] [\\fIOPTIONS\\fR]
.PP
Without a subcommand, \\fBherald\\fR runs \\fBserve\\fR.
.SH DESCRIPTION
${description_r}
.PP
.nf
${top_usage_r}.fi
.SH SUBCOMMANDS
")
foreach(sub ${subcommands})
    help_of(text ${sub})
    roff_escape(text_r "${text}")
    string(APPEND page ".SS \"herald ${sub}\"
.nf
${text_r}.fi
")
endforeach()
string(APPEND page ".SH FILES
.TP
.I /etc/herald/herald.toml
The configuration the packaged service reads (every key, commented).
.TP
.I /var/lib/herald/
The service's state directory: the SQLite store of the packaged configuration.
.SH SIGNALS
.TP
.B SIGTERM, SIGINT
Stop accepting, flush the store, end the streams cleanly and exit 0.
.TP
.B SIGHUP
Read the configuration again and put its [auth] section in force.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
")

get_filename_component(out_dir "${OUT}" DIRECTORY)
string(REGEX REPLACE "\\.gz$" "" plain "${OUT}")
file(WRITE "${plain}" "${page}")
# -n: no name or time stamp inside, so the same page gives the same file.
execute_process(COMMAND gzip -9nf "${plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "manpage.cmake: gzip failed (${rc})")
endif()
