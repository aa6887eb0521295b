#!/bin/bash
# completion.sh: the bash completion offers every command, and every long option each command's --help names.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 11
. "$top_srcdir/contrib/completion/pipit.bash"

# complete WORDS...: the completions of the last word of the line.
complete_line() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    if [ "${COMP_WORDS[0]}" = pipitd ]; then _pipitd; else _pipit; fi
    printf '%s\n' "${COMPREPLY[@]}"
}

# Commands: those pipit --help lists.
want=$("$PIPIT" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p' | sort)
got=$(complete_line pipit "" | sort)
missing=$(comm -23 <(echo "$want") <(echo "$got"))
[ -n "$want" ] && [ -z "$missing" ]
ok $? "every command is offered${missing:+ (missing: $missing)}"

for cmd in check plugin-test decode run options keygen deploy sign-plugin; do
    want=$("$PIPIT" "$cmd" --help 2>&1 | grep -o -- '--[a-z-]*' | sort -u)
    got=$(complete_line pipit "$cmd" "--" | sort -u)
    missing=$(comm -23 <(echo "$want") <(echo "$got"))
    [ -z "$missing" ]
    ok $? "pipit $cmd: every option of its --help is offered${missing:+ (missing: $missing)}"
done

want=$("$PIPITD" --help | grep -o -- '--[a-z-]*' | sort -u)
got=$(complete_line pipitd "--" | sort -u)
missing=$(comm -23 <(echo "$want") <(echo "$got"))
[ -z "$missing" ]
ok $? "pipitd: every option of its --help is offered${missing:+ (missing: $missing)}"

complete_line pipit check -c "$top_srcdir/conf/pip" | grep -q 'pipit.yaml$'
ok $? "a configuration file is offered after -c"
done_testing
