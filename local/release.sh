#!/usr/bin/env bash
# `make release`: every Lambda of template.yaml as an arm64 `bootstrap` (cargo lambda build
# --release --arm64, zig from PyPI as the cross linker), the edge node for x86_64 and aarch64,
# `sam build` over the template (it runs cargo lambda per function in the source tree, so it
# reuses these builds and must end with the same bytes), and reports/release.md with each
# artifact's size. Fails if an artifact is missing, is built for the wrong machine, or if
# what `sam build` packaged differs from what was built.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { echo "[release] $*" >&2; }

# Tools: the pinned stack tools (cargo-lambda, sam), zig in a venv of its own, both targets.
./local/stack.sh tools
RVENV="$ROOT/.venv-release"
# shellcheck source=local/venv.sh
source "$ROOT/local/venv.sh"
venv_install "$RVENV" "$ROOT/local/requirements-release.txt" "zig (PyPI ziglang)"
export PATH="$RVENV/bin:$ROOT/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
rustup target add --toolchain stable aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu >/dev/null 2>&1 ||
  rustup target list --installed | grep -q aarch64-unknown-linux-gnu ||
  { say "rustup could not add aarch64-unknown-linux-gnu"; exit 1; }

# Every function of the template, by its BuildProperties.Binary.
mapfile -t bins < <(awk '/^ *Binary: / { print $2 }' template.yaml | sort -u)
[ "${#bins[@]}" -gt 0 ] || { say "no BuildProperties.Binary in template.yaml"; exit 1; }
args=(); for b in "${bins[@]}"; do args+=(--bin "$b"); done

out="$ROOT/target/release-artifacts"
rm -rf "$out"; mkdir -p "$out"
t0=$(date +%s)
say "building ${#bins[@]} functions and the edge node for arm64 (cargo lambda build --release --arm64)"
cargo lambda build --quiet --release --arm64 "${args[@]}" --bin edge-node
t1=$(date +%s)
cp target/lambda/edge-node/bootstrap "$out/edge-node-aarch64"
say "building the edge node for x86_64"
cargo lambda build --quiet --release --x86-64 --bin edge-node --lambda-dir target/lambda-x86_64
cp target/lambda-x86_64/edge-node/bootstrap "$out/edge-node-x86_64"
t2=$(date +%s)

say "sam build over template.yaml"
rm -rf .aws-sam/build
sam build --beta-features --template template.yaml >.local/sam-build.log 2>&1 ||
  { tail -30 .local/sam-build.log >&2; say "sam build failed; see .local/sam-build.log"; exit 1; }
t3=$(date +%s)

# Checks and the report.
python3 - "$out" "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))" "${bins[@]}" <<'PY'
import hashlib, io, os, re, subprocess, sys, zipfile
out, t_fn, t_edge, t_sam, bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
MACHINE = {183: "aarch64", 62: "x86_64"}
def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        sys.exit(f"release: {path} is not an ELF executable")
    return MACHINE.get(int.from_bytes(head[18:20], "little"), "other")
def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()
def zipped(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())
mib = lambda n: f"{n / 1048576:.1f}"
# The template's logical id of each binary, from the sam build directory's layout.
template = open("template.yaml").read()
ids = {}
for m in re.finditer(r"\n  (\w+):\n    Type: AWS::Serverless::Function\n(?:(?!\n  \w).)*?Binary: ([\w-]+)", template, re.S):
    ids.setdefault(m.group(2), []).append(m.group(1))
rows, problems, total, total_zip = [], [], 0, 0
for b in bins:
    p = f"target/lambda/{b}/bootstrap"
    if not os.path.exists(p):
        problems.append(f"{b}: no {p}"); continue
    arch = elf_machine(p)
    if arch != "aarch64":
        problems.append(f"{b}: built for {arch}, not aarch64")
    size, z = os.path.getsize(p), zipped(p)
    total += size; total_zip += z
    digest = sha(p)
    for lid in ids.get(b, []):
        q = f".aws-sam/build/{lid}/bootstrap"
        if not os.path.exists(q):
            problems.append(f"{b}: sam build wrote no {q}")
        elif sha(q) != digest:
            problems.append(f"{b}: sam build's {q} differs from {p}")
    if not ids.get(b):
        problems.append(f"{b}: no function of the template names it")
    rows.append((b, ", ".join(ids.get(b, [])), size, z, digest[:12]))
edge = []
for arch in ("x86_64", "aarch64"):
    p = f"{out}/edge-node-{arch}"
    got = elf_machine(p)
    if got != arch:
        problems.append(f"edge-node-{arch}: built for {got}")
    edge.append((arch, os.path.getsize(p), sha(p)[:12]))
if problems:
    sys.exit("release: " + "; ".join(problems))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
lines = [
    "# Release build",
    "",
    f"Written by `make release` at commit `{commit}` ({rustc}; cargo-lambda with zig as the cross linker; "
    "profile `release`: see `[profile.release]` in Cargo.toml).",
    "",
    f"- {len(rows)} Lambda functions for `provided.al2023` on arm64 (Graviton), each `target/lambda/<name>/bootstrap`; "
    f"built in {t_fn} s (with the edge node's aarch64 build).",
    f"- The edge node for x86_64 and aarch64 (`target/release-artifacts/edge-node-<arch>`): x86_64 in {t_edge} s.",
    f"- `sam build --beta-features` accepted template.yaml and packaged every function in {t_sam} s; "
    "each packaged `bootstrap` is byte for byte the one built here (sha256 checked).",
    f"- In all: {mib(total)} MiB of binaries, {mib(total_zip)} MiB as the zip archives Lambda receives "
    f"(deflate level 9; Lambda's limit is 50 MiB zipped per function, the largest here is {mib(max(r[3] for r in rows))} MiB).",
    "",
    "| function binary | template resource | size (MiB) | zipped (MiB) | sha256 |",
    "|---|---|---:|---:|---|",
]
lines += [f"| `{b}` | {lid} | {mib(s)} | {mib(z)} | `{d}` |" for b, lid, s, z, d in sorted(rows)]
lines += ["", "| edge node | size (MiB) | sha256 |", "|---|---:|---|"]
lines += [f"| `edge-node` {arch} | {mib(s)} | `{d}` |" for arch, s, d in edge]
open("reports/release.md", "w").write("\n".join(lines) + "\n")
print(f"release: {len(rows)} functions ({mib(total)} MiB, {mib(total_zip)} MiB zipped) and 2 edge-node builds; reports/release.md")
PY
