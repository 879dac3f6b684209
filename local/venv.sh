# Sourced by local/stack.sh, release.sh and coldstart.sh: install a pinned requirements file into
# its own venv, again only when the file changes (a stamp named after its digest).
venv_install() {
  local venv=$1 requirements=$2 what=$3
  local stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
  [ -f "$stamp" ] && return
  say "installing $what into ${venv#"$ROOT"/}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  rm -f "$venv"/.installed-*; touch "$stamp"
}
