#!/usr/bin/env bash
# deb_test.sh - build the Debian package from this tree as a packager would
# (dpkg-buildpackage -us -uc -b, with nocheck and the release build) in a copy under /tmp,
# then check it: the files it installs (dpkg-deb -c) and lintian (no errors; warnings and
# the rest are listed). Run by ./dev.sh package and ./dev.sh test; exits 0 when both pass.
#
#   tests/package/deb_test.sh [--keep]    --keep leaves the build dir and prints its path
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
work=$(mktemp -d /tmp/llmgate-deb.XXXXXX)
[ $keep = 1 ] || trap 'rm -rf "$work"' EXIT
src="$work/llmgate-$version"
mkdir -p "$src"
# the tree as it is (tracked and new files, not what .gitignore leaves out: build dirs)
git ls-files -z --cached --others --exclude-standard | tar -C "$ROOT" --null -T - -cf - |
    tar -C "$src" -xf -

start=$(date +%s)
if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b \
        >"$work/build.log" 2>&1); then
    tail -40 "$work/build.log"
    echo "deb_test: dpkg-buildpackage failed (log above)"
    exit 1
fi
echo "deb_test: dpkg-buildpackage took $(($(date +%s) - start)) s"

deb=$(ls "$work"/llmgate_"$version"_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#; s#/$##' | grep -v '^$' | sort >"$work/contents"
rc=0
for f in /usr/sbin/llmgate /usr/bin/llmgatectl \
         /usr/share/man/man8/llmgate.8.gz /usr/share/man/man8/llmgatectl.8.gz \
         /usr/share/man/man5/llmgate.yaml.5.gz \
         /usr/share/bash-completion/completions/llmgatectl \
         /lib/systemd/system/llmgate.service /usr/lib/sysusers.d/llmgate.conf \
         /usr/share/doc/llmgate/copyright; do
    grep -qx "$f" "$work/contents" || { echo "deb_test: $f is not in the package"; rc=1; }
done
grep -Eq '^/usr/share/doc/llmgate/examples/llmgate\.example\.yaml(\.gz)?$' "$work/contents" ||
    { echo "deb_test: the example config is not in the package"; rc=1; }
# nothing but these places (no /usr/local, no test binaries, no mock upstream)
if grep -Ev '^/(usr/(sbin|bin|lib/sysusers\.d|share/(man|doc|bash-completion))|lib/systemd)(/|$)|^/(usr|usr/share|usr/lib|lib)$' \
        "$work/contents"; then
    echo "deb_test: unexpected files in the package (above)"
    rc=1
fi
# the unit as debhelper wires it: enabled, restarted on upgrade
ctl="$work/control"
dpkg-deb -e "$deb" "$ctl"
grep -q "llmgate.service" "$ctl/postinst" || { echo "deb_test: postinst does not enable the unit"; rc=1; }
grep -q "systemd-sysusers" "$ctl/postinst" || { echo "deb_test: postinst does not create the user"; rc=1; }
dpkg-deb -f "$deb" Depends | grep -q libsystemd0 || { echo "deb_test: no libsystemd0 dependency"; rc=1; }
mkdir -p "$work/ex" && dpkg-deb -x "$deb" "$work/ex"
"$work/ex/usr/sbin/llmgate" --version | grep -q "systemd=yes" ||
    { echo "deb_test: the packaged llmgate has no sd_notify"; rc=1; }

if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 --display-info --pedantic "$work"/llmgate_"$version"_*.changes >"$work/lintian.txt" 2>&1 || true
    echo "deb_test: lintian:"
    grep -v 'running with root privileges' "$work/lintian.txt" | sed 's/^/  /' || true
    if grep -q '^E:' "$work/lintian.txt"; then
        echo "deb_test: lintian reports errors"
        rc=1
    fi
else
    echo "deb_test: lintian not installed (apt-get install lintian): not checked"
    rc=1
fi
[ $keep = 1 ] && echo "deb_test: build kept in $work"
[ $rc = 0 ] && echo "deb_test: ok ($deb)"
exit $rc
