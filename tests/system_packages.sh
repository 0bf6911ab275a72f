#!/usr/bin/env sh
# The Debian packages some tests need: pdflatex with booktabs and siunitx (the LaTeX tables are
# typeset), Chromium and its ChromeDriver (the report is opened in a real browser), SLURM and
# munge (the tiny workflow runs through a one-node cluster the test starts). Installs
# what is missing when it can (root, or sudo without a password); otherwise says which tests
# will skip and succeeds, so the rest of the suite still runs.
set -eu
missing=""
command -v pdflatex >/dev/null 2>&1 && kpsewhich siunitx.sty >/dev/null 2>&1 ||
    missing="texlive-latex-base texlive-latex-recommended texlive-science"
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 ||
    missing="$missing chromium chromium-driver"
command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 ||
    missing="$missing slurm-wlm munge"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"
else
    echo "system_packages.sh: not root: install$missing to run the LaTeX, browser and SLURM tests (they skip without)" >&2
    exit 0
fi
echo "system_packages.sh: installing $missing" >&2
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
