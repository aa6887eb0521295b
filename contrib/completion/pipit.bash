# bash completion for pipit(1) and pipitd(8).

_pipit_plugins() {
    # Plugin files: the installed directory, or paths as typed.
    local dir
    for dir in /usr/lib/pipit/plugins /usr/local/lib/pipit/plugins; do
        [ -d "$dir" ] && COMPREPLY+=($(compgen -W "$(cd "$dir" && echo *.so)" -- "$1"))
    done
    COMPREPLY+=($(compgen -f -X '!*.so' -- "$1") $(compgen -d -- "$1"))
}

_pipit() {
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "check plugin-test decode run options keygen deploy sign-plugin version help --version --help" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    case $prev in
    -c|--config) COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur")); return ;;
    --plugin-dir|--state-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --events) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -k|--key-file|-o|--out|--key|--trusted-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -l|--log-level) COMPREPLY=($(compgen -W "error warn info debug trace" -- "$cur")); return ;;
    -n|--runs|-i|--interval|-t|--timeout|-m|--max-bytes|--var) return ;;
    --inventory|--key|--signing-key-file|--rollback-plan) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --strategy) COMPREPLY=($(compgen -W "rolling canary" -- "$cur")); return ;;
    --target|--brokers|--batch|--max-failures|--canary|--gate-command|--wave-timeout|--validity|--command-topic|--events-topic|--id) return ;;
    esac
    case $cmd in
    check) COMPREPLY=($(compgen -W "-c --config -q --quiet --plugin-dir --help" -- "$cur")) ;;
    plugin-test)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-n --runs -i --interval -t --timeout -l --log-level
                --require-signature --trusted-key --help" -- "$cur"))
        else
            _pipit_plugins "$cur"
        fi ;;
    decode)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-k --key-file -s --require-signature -H --header
                --header-only -m --max-bytes --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi ;;
    run)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--var --dry-run --resume --state-dir --plugin-dir
                --events -q --quiet -l --log-level --require-signature --trusted-key
                --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur"))
        fi ;;
    options) COMPREPLY=($(compgen -W "--markdown --man --plugin-dir --help" -- "$cur")) ;;
    keygen) COMPREPLY=($(compgen -W "-o --out --help" -- "$cur")) ;;
    deploy)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--target --brokers --key --var --inventory --strategy
                --batch --max-failures --canary --gate-command --wave-timeout --validity
                --command-topic --events-topic --signing-key-file --rollback-plan --dry-run
                --id --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur"))
        fi ;;
    sign-plugin)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-k --key --help" -- "$cur"))
        else
            _pipit_plugins "$cur"
        fi ;;
    esac
}

_pipitd() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
    -c|--config) COMPREPLY=($(compgen -f -X '!*.y*ml' -- "$cur") $(compgen -d -- "$cur")); return ;;
    --plugin-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -W "-c --config --plugin-dir -t --check -V --version -h --help" -- "$cur"))
}

complete -F _pipit pipit
complete -F _pipitd pipitd
