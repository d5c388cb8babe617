# Shared set-up for scripts/test and scripts/run: installs what is missing on a fresh
# Debian machine, and nothing that is already there. Sourced, not executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_apt PKG... : install Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The sha1 of a requirements file and of every file it pulls in with `-r`, so the venv is
# brought up to date when any of them changes.
req_hash() {
  local dir inc
  dir="$(dirname "$1")"
  {
    cat "$1"
    sed -n 's/^-r[[:space:]]*//p' "$1" | while read -r inc; do req_hash "$dir/$inc"; done
  } | sha1sum | cut -d' ' -f1
}

# ensure_venv [REQUIREMENTS...] : create .venv and install pinned requirement files
# (default tests/requirements.txt) whenever one of them, or a file it includes, changed.
ensure_venv() {
  local reqs=("$@")
  [ ${#reqs[@]} -gt 0 ] || reqs=("$ROOT/tests/requirements.txt")
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating Python venv in .venv"
    python3 -m venv "$VENV"
  fi
  local req stamp want
  for req in "${reqs[@]}"; do
    stamp="$VENV/.$(basename "$(dirname "$req")")-$(basename "$req").sha1"
    want="$(req_hash "$req")"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      log "installing pinned Python packages (${req#"$ROOT"/})"
      "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
      echo "$want" >"$stamp"
    fi
  done
}
