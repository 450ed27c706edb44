#!/usr/bin/env bash
# Builds the xvs Debian package with dpkg-deb from what `make build` built:
#   /usr/sbin/xvsd, /usr/sbin/xvsadm              the director and its CLI
#   /lib/systemd/system/xvsd.service               the unit (internal/pkg)
#   /etc/xvs/xvs.toml                              the commented default (configs/xvs.toml), a conffile
#   /usr/share/man/man8/xvsd.8.gz, xvsadm.8.gz     written by the binaries themselves from their flags,
#   /usr/share/man/man5/xvs.toml.5.gz              option tables and the configuration schema
#   /usr/share/bash-completion/completions/xvsadm  written by xvsadm completion bash
#   /usr/share/doc/xvs/examples/                   configs/*.toml
# xvs-echo and xvs-pktgen are test and benchmark tools, not shipped.
# Usage: mkdeb.sh BIN_DIR; writes BIN_DIR/xvs_VERSION_ARCH.deb and prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-bin}
version=${VERSION:-0.1.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
arch=$(dpkg --print-architecture)
root="$bin/pkg/root"
rm -rf "$bin/pkg"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$bin/xvsd" "$root/usr/sbin/xvsd"
install -D -m 0755 "$bin/xvsadm" "$root/usr/sbin/xvsadm"
install -D -m 0644 internal/pkg/xvsd.service "$root/lib/systemd/system/xvsd.service"
install -D -m 0644 configs/xvs.toml "$root/etc/xvs/xvs.toml"
mkdir -p "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/xvs/examples"
"$bin/xvsd" -manpage xvsd.8 | gzip -9n > "$root/usr/share/man/man8/xvsd.8.gz"
"$bin/xvsd" -manpage xvs.toml.5 | gzip -9n > "$root/usr/share/man/man5/xvs.toml.5.gz"
"$bin/xvsadm" manpage | gzip -9n > "$root/usr/share/man/man8/xvsadm.8.gz"
"$bin/xvsadm" completion bash > "$root/usr/share/bash-completion/completions/xvsadm"
for f in configs/*.toml; do
	[ "$(basename "$f")" = xvs.toml ] || install -m 0644 "$f" "$root/usr/share/doc/xvs/examples/"
done
install -m 0644 internal/pkg/debian/copyright "$root/usr/share/doc/xvs/copyright"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" internal/pkg/debian/control > "$root/DEBIAN/control"
install -m 0644 internal/pkg/debian/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "internal/pkg/debian/$s" "$root/DEBIAN/$s"
done
deb="$bin/xvs_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
