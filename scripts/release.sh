#!/usr/bin/env bash
# make release: static linux binaries, .deb and .rpm packages (nfpm, from
# packaging/nfpm.yaml), shell completions, man pages and SHA256SUMS, in $DIST.
#
#   DIST     output dir (default dist), outside the tree or ignored by git;
#            replaced as a whole once everything is built: a failed run
#            leaves the previous release, or nothing
#   ARCHES   default "amd64 arm64"
#   FORMATS  default "deb rpm"
#   NFPM     the nfpm binary (the Makefile builds it from its Go module)
#
# Reproducible: the same commit (and working tree) gives the same bytes.
# CGO_ENABLED=0, -trimpath, fixed -ldflags (version and commit), version
# control information stamped by -buildvcs=true; every time in the outputs
# (man page dates, file times in the packages, the rpm's build time) is
# SOURCE_DATE_EPOCH, the last commit's time; gzip -n leaves names and times
# out of the man pages. e2e/package_test.go builds twice and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
DIST=${DIST:-dist}
ARCHES=${ARCHES:-amd64 arm64}
FORMATS=${FORMATS:-deb rpm}
: "${NFPM:?NFPM must name the nfpm binary (make release builds it)}"
NFPM=$(realpath "$NFPM")
top=$(git rev-parse --show-toplevel)
case "$(realpath -m "$DIST")/" in
"$top"/*) git check-ignore -q "${DIST%/}/SHA256SUMS" || { echo "release: DIST=$DIST is in the tree and not ignored by git: the build would see it as a change" >&2; exit 2; } ;;
esac

commit=$(git rev-parse HEAD)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
export SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C
commit_time=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
VERSION=${VERSION:-$(git describe --tags --always --dirty)}
# the packages' version must start with a digit and sort by time: the tag
# without its v, else 0.0.0~gitDATE.COMMIT
if tag=$(git describe --tags --exact-match 2>/dev/null) && [[ $tag =~ ^v?[0-9] ]]; then
	pkg_version=${tag#v}
else
	pkg_version="0.0.0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S).${commit:0:12}"
fi

start=$(date +%s)
# built outside the tree: a file the build adds to it would mark the tree
# modified (vcs.modified in the binary), and the next build's bytes with it;
# for the same reason DIST must be outside the tree or ignored by git
out=$(mktemp -d "${TMPDIR:-/tmp}/etcdsafe-release.XXXXXX")
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/completions" "$out/man"

ldflags="-s -w -X main.version=$VERSION -X main.commit=$commit -X main.commitTime=$commit_time"
host=$($GO env GOHOSTARCH)
hostbin=
for arch in $ARCHES; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -buildvcs=true -ldflags "$ldflags" \
		-o "$out/etcdsafe-linux-$arch" ./cmd/etcdsafe
	[ "$arch" != "$host" ] || hostbin=$out/etcdsafe-linux-$arch
done
if [ -z "$hostbin" ]; then # completions and man pages come from a binary that runs here
	hostbin=$out/.host-etcdsafe
	CGO_ENABLED=0 $GO build -trimpath -buildvcs=true -ldflags "$ldflags" -o "$hostbin" ./cmd/etcdsafe
fi

"$hostbin" completion bash >"$out/completions/etcdsafe.bash"
"$hostbin" completion zsh >"$out/completions/_etcdsafe"
"$hostbin" completion fish >"$out/completions/etcdsafe.fish"
"$hostbin" man "$out/man"
gzip -9n "$out"/man/*.1
rm -f "$out/.host-etcdsafe"

for arch in $ARCHES; do
	for f in $FORMATS; do
		ARCH=$arch PKG_VERSION=$pkg_version DIST=$(realpath "$out") \
			"$NFPM" package --config packaging/nfpm.yaml --packager "$f" --target "$out/" | { grep -v "^using\|^created package" || true; }
	done
done

(cd "$out" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
chmod 0755 "$out"
rm -rf "$DIST"
mkdir -p "$(dirname "$DIST")"
mv "$out" "$DIST"
trap - EXIT
echo "release $VERSION ($pkg_version) in $DIST/ in $(( $(date +%s) - start ))s:"
(cd "$DIST" && ls -l $(cut -d' ' -f3 SHA256SUMS) | awk '{printf "  %-60s %10d\n", $NF, $5}')
