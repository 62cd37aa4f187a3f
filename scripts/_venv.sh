# Sourced by scripts/test and scripts/demo: create .venv and install the project once,
# reinstalling when pyproject.toml or the constraints change.
ensure_venv() {
  extra="$1"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  stamp=".venv/.installed-$extra"
  want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    if [ "$extra" = "dev" ]; then target=".[dev]"; else target="."; fi
    # Editable for development; constraints pin every transitive version (reproducible).
    .venv/bin/python -m pip install -q -c constraints.txt -e "$target"
    echo "$want" > "$stamp"
  fi
}
