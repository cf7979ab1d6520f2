# bash completion for crdump, crrestore, crit, crconvert and crmigrate.
#
# Installed once under each tool's name in share/bash-completion/completions, where
# bash-completion loads it the first time one of them is completed; or source it.
#
# The options are not listed here: they are read from the tool's own --help (CLI11 prints one
# option per line, "  -o,--output TEXT   description"), once per shell and command, so a new
# option completes without this file changing. Value types follow the option's name: TEXT
# completes file names, TEXT:{a,b} its choices, INT:INT in [1 - 19] its range, other numbers
# nothing.

declare -gA _crtools_help_cache=()

# The --help text of "$1 $2" ($2: crit's subcommand, or empty), cached.
_crtools_help() {
  local key="$1 $2"
  if [[ -z ${_crtools_help_cache[$key]+set} ]]; then
    _crtools_help_cache[$key]=$(LC_ALL=C "$1" ${2:+"$2"} --help 2>/dev/null)
  fi
  printf '%s\n' "${_crtools_help_cache[$key]}"
}

# One line per option: "NAME TYPE" (TYPE empty for a flag), for every name of every option.
_crtools_options() {
  local line names type n
  local re='^(-[^ ]+)( ([A-Z]+[^ ]*( [^ ].*)?))?$'
  while IFS= read -r line; do
    [[ $line == " "* ]] || continue  # options are indented, their section title is not
    line=${line#"${line%%[! ]*}"}
    # CLI11 pads the names column to the description with two or more spaces.
    line=${line%%  *}
    [[ $line =~ $re ]] || continue
    names=${BASH_REMATCH[1]} type=${BASH_REMATCH[3]}
    local IFS=,
    for n in $names; do
      [[ $n =~ ^--?[A-Za-z0-9][A-Za-z0-9-]*$ ]] && printf '%s %s\n' "$n" "$type"
    done
  done < <(_crtools_help "$1" "$2")
}

# The TYPE of option $3 of "$1 $2", "flag" for an option without a value, empty if unknown.
_crtools_option_type() {
  local name type
  while read -r name type; do
    if [[ $name == "$3" ]]; then
      printf '%s\n' "${type:-flag}"
      return
    fi
  done < <(_crtools_options "$1" "$2")
}

# Completions for a value of type $1 (CLI11's spelling) into COMPREPLY.
_crtools_values() {
  local type=$1 cur=$2
  if [[ $type =~ \{([^}]*)\} ]]; then
    mapfile -t COMPREPLY < <(compgen -W "${BASH_REMATCH[1]//,/ }" -- "$cur")
  elif [[ $type =~ \[([0-9]+)\ -\ ([0-9]+)\] ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")" -- "$cur")
  elif [[ $type == TEXT* ]]; then
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  else
    COMPREPLY=()
  fi
}

_crtools() {
  local cmd=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=''
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # "--opt=value": bash splits at the "=" (COMP_WORDBREAKS) or, without it, one word.
  if [[ $cur == "=" ]]; then
    cur=
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  elif [[ $cur == --*=* ]]; then
    prev=${cur%%=*} cur=${cur#*=}
  fi
  COMPREPLY=()

  # crit: the first word that is not an option is the subcommand; then count positionals.
  local sub='' npos=0 i w t
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == "=" || ${COMP_WORDS[i - 1]} == "=" ]] && continue
    if [[ $w == -* ]]; then
      t=$(_crtools_option_type "$cmd" "$sub" "${w%%=*}")
      [[ $w != *=* && -n $t && $t != flag ]] && ((i++))  # skip its value
      continue
    fi
    if [[ ${cmd##*/} == crit && -z $sub ]]; then
      sub=$w
    else
      ((npos++))
    fi
  done

  if [[ $prev == -* ]]; then
    t=$(_crtools_option_type "$cmd" "$sub" "$prev")
    if [[ -n $t && $t != flag && $cur != -* ]]; then
      _crtools_values "$t" "$cur"
      return 0
    fi
  fi
  if [[ $cur == -* ]]; then
    local name type opts=()
    while read -r name type; do opts+=("$name"); done < <(_crtools_options "$cmd" "$sub")
    [[ ${cmd##*/} == crdump ]] && opts+=(-z)  # -z[LEVEL]: crdump's own spelling, not CLI11's
    mapfile -t COMPREPLY < <(compgen -W "${opts[*]}" -- "$cur")
    return 0
  fi

  case ${cmd##*/} in
    crdump)
      # The PID of the tree's root.
      local pids=(/proc/[0-9]*)
      mapfile -t COMPREPLY < <(compgen -W "${pids[*]#/proc/}" -- "$cur")
      ;;
    crit)
      if [[ -z $sub ]]; then
        # The lines under "Subcommands:" in crit --help.
        local subs=() in_subs=0 line
        while IFS= read -r line; do
          [[ $line == Subcommands:* ]] && { in_subs=1; continue; }
          ((in_subs)) && [[ $line =~ ^\ +([a-z]+)\  ]] && subs+=("${BASH_REMATCH[1]}")
        done < <(_crtools_help "$cmd" "")
        mapfile -t COMPREPLY < <(compgen -W "${subs[*]}" -- "$cur")
      elif [[ $sub == x ]] && ((npos == 0)); then
        # VIEW, with its choices from "VIEW TEXT:{ps,fds,mems}".
        local line
        while IFS= read -r line; do
          if [[ $line =~ ^\ +VIEW\ ([^ ]+) ]]; then
            _crtools_values "${BASH_REMATCH[1]}" "$cur"
            break
          fi
        done < <(_crtools_help "$cmd" x)
      else
        _crtools_values TEXT "$cur"  # IMG or JSON
      fi
      ;;
    *)
      # crrestore and crconvert take no operands: their options.
      local name type opts=()
      while read -r name type; do opts+=("$name"); done < <(_crtools_options "$cmd" "")
      mapfile -t COMPREPLY < <(compgen -W "${opts[*]}" -- "$cur")
      ;;
  esac
  return 0
}

complete -F _crtools crdump crrestore crit crconvert crmigrate
