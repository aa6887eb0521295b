#!/bin/sh
# keygen.sh: pipit keygen writes a key pair with the right modes and formats, prints its id, and never overwrites.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 16
mode() { stat -c %a "$1"; }

"$PIPIT" keygen --out "$T/deploy" >"$T/out" 2>"$T/err"
ok $? "pipit keygen --out PREFIX exits 0"
[ -f "$T/deploy.key" ] && [ -f "$T/deploy.pub" ]
ok $? "it writes PREFIX.key and PREFIX.pub"
[ "$(mode "$T/deploy.key")" = 600 ]
ok $? "the private key is mode 0600 ($(mode "$T/deploy.key"))"
grep -qx -- '-----BEGIN PRIVATE KEY-----' "$T/deploy.key"
ok $? "the private key is PKCS#8 PEM"
grep -qx -- '-----BEGIN PUBLIC KEY-----' "$T/deploy.pub"
ok $? "the public key is SubjectPublicKeyInfo PEM"
id=$(cat "$T/out")
echo "$id" | grep -qx '[0-9a-f]\{16\}'
ok $? "stdout is the key id, 16 hex digits ($id)"
grep -q "wrote $T/deploy.key" "$T/err"
ok $? "stderr names the files"

if command -v openssl >/dev/null 2>&1; then
    openssl pkey -in "$T/deploy.key" -noout -text 2>/dev/null | grep -q 'ED25519 Private-Key'
    ok $? "openssl reads the private key as Ed25519"
    want=$(openssl pkey -pubin -in "$T/deploy.pub" -outform DER | tail -c 32 | sha256sum | cut -c1-16)
    [ "$id" = "$want" ]
    ok $? "the id is the SHA-256 of the raw public key, cut to 16 digits"
    [ "$(openssl pkey -in "$T/deploy.key" -pubout)" = "$(cat "$T/deploy.pub")" ]
    ok $? "the two files are one pair"
else
    skip "openssl not found"; skip "openssl not found"; skip "openssl not found"
fi

cp "$T/deploy.key" "$T/before"
"$PIPIT" keygen --out "$T/deploy" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "deploy.key: already exists; refusing to overwrite a key" "$T/err"
ok $? "a second keygen to the same prefix fails (exit 1) and says why"
cmp -s "$T/before" "$T/deploy.key" && [ ! -s "$T/out" ]
ok $? "the old key is untouched and no id is printed"
rm "$T/deploy.key"
"$PIPIT" keygen -o "$T/deploy" >/dev/null 2>&1
[ $? -eq 1 ] && [ ! -e "$T/deploy.key" ]
ok $? "only the .pub existing: refused too, and no .key written"

(cd "$T" && umask 000 && "$PIPIT" keygen >/dev/null 2>&1)
[ "$(mode "$T/pipit-deploy.key")" = 600 ]
ok $? "the default prefix is pipit-deploy, and the key is 0600 even under umask 000"

"$PIPIT" keygen --bogus >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown option is a usage error (exit 2)"
"$PIPIT" keygen --help | grep -q "usage: pipit keygen"
ok $? "--help prints the usage"
done_testing
