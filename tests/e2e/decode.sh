#!/bin/sh
# decode.sh: pipit decode on files, streams and stdin, with and without keys, refusals and exit codes.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 44

SAMPLE="$top_builddir/tests/e2e/wire_sample"
"$SAMPLE" "$T"
ok $? "wire_sample wrote the sample messages"
S=$T
size() { wc -c <"$1" | tr -d ' '; }

# --- single messages ---------------------------------------------------------
"$PIPIT" decode "$S/unsigned.bin" >"$T/out" 2>"$T/err"
ok $? "an unsigned zlib message decodes (exit 0)"
cmp -s "$T/out" "$S/unsigned.ndjson"
ok $? "and prints its records exactly"
[ ! -s "$T/err" ]
ok $? "and says nothing on stderr"

"$PIPIT" decode <"$S/signed.bin" >"$T/out" 2>"$T/err"
ok $? "a signed message on stdin decodes without a key (unchecked)"
cmp -s "$T/out" "$S/signed.ndjson"
ok $? "and prints its record"

"$PIPIT" decode --key-file "$S/key" --require-signature "$S/signed.bin" >"$T/out" 2>"$T/err"
ok $? "a signed message decodes with its key when a signature is required"
cmp -s "$T/out" "$S/signed.ndjson"
ok $? "and prints its record"

"$PIPIT" decode -k "$S/key" -s "$S/zstd.bin" >"$T/out" 2>"$T/err"
ok $? "a signed zstd message decodes with its key"
cmp -s "$T/out" "$S/zstd.ndjson"
ok $? "and prints its record"

"$PIPIT" decode "$S/none.bin" "$S/empty.bin" >"$T/out" 2>"$T/err"
ok $? "codec none and an empty batch decode"
cmp -s "$T/out" "$S/none.ndjson"
ok $? "the empty batch adds nothing"

# --- refusals ------------------------------------------------------------------
printf 'wrong-key' >"$T/wrong"
"$PIPIT" decode --key-file "$T/wrong" "$S/signed.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ ! -s "$T/out" ]
ok $? "a wrong key: exit 1, no records"
grep -qx "pipit decode: message 1 (offset 0): bad_signature: HMAC-SHA256 does not match: signed with another key, or altered after signing" "$T/err"
ok $? "the refusal names the message, offset, reason and why"

"$PIPIT" decode --key-file "$S/key" --require-signature "$S/unsigned.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "message 1 (offset 0): unsigned: " "$T/err"
ok $? "an unsigned message is refused when a signature is required"

"$PIPIT" decode --require-signature "$S/signed.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "bad_signature: message is signed but no key is known" "$T/err"
ok $? "a signed message with no key to check it is refused when required"

"$PIPIT" decode "$S/corrupt.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ ! -s "$T/out" ] && grep -q "message 1 (offset 0): checksum: CRC-32" "$T/err"
ok $? "a corrupted message is a checksum error"

"$PIPIT" decode "$S/truncated.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "message 1 (offset 0): truncated: message is $(size "$S/truncated.bin") bytes but its header declares 64+" "$T/err"
ok $? "a truncated message says how long it is and should be"

"$PIPIT" decode --max-bytes 1MiB "$S/big.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "too_large: header declares [0-9]* bytes uncompressed, over the limit of 1048576" "$T/err"
ok $? "--max-bytes 1MiB refuses a 2 MiB batch"
"$PIPIT" decode --max-bytes 4MiB "$S/big.bin" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && cmp -s "$T/out" "$S/big.ndjson"
ok $? "--max-bytes 4MiB lets it through"
"$PIPIT" decode "$S/big.bin" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && cmp -s "$T/out" "$S/big.ndjson"
ok $? "the default cap (64 MiB) lets it through"

# --- streams of messages ---------------------------------------------------------
cat "$S/unsigned.bin" "$S/signed.bin" "$S/zstd.bin" "$S/none.bin" >"$T/stream"
cat "$S/unsigned.ndjson" "$S/signed.ndjson" "$S/zstd.ndjson" "$S/none.ndjson" >"$T/stream.ndjson"
"$PIPIT" decode -k "$S/key" <"$T/stream" >"$T/out" 2>"$T/err"
ok $? "four messages back to back on stdin decode"
cmp -s "$T/out" "$T/stream.ndjson"
ok $? "their records come out in order"

"$PIPIT" decode -k "$S/key" "$S/unsigned.bin" - "$S/none.bin" <"$S/signed.bin" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && [ "$(cat "$S/unsigned.ndjson" "$S/signed.ndjson" "$S/none.ndjson")" = "$(cat "$T/out")" ]
ok $? "files and - (stdin) mix as arguments, in order"

cat "$S/unsigned.bin" "$S/corrupt.bin" "$S/none.bin" >"$T/mixed"
"$PIPIT" decode "$T/mixed" >"$T/out" 2>"$T/err"
[ $? -eq 1 ]
ok $? "a stream with a damaged message in the middle exits 1"
[ "$(cat "$S/unsigned.ndjson" "$S/none.ndjson")" = "$(cat "$T/out")" ]
ok $? "the messages around it still decode"
grep -qx "pipit decode: message 2 (offset $(size "$S/unsigned.bin")): checksum: .*" "$T/err" &&
    [ "$(wc -l <"$T/err")" -eq 1 ]
ok $? "the damaged one is named by number and offset, once"

cat "$S/unsigned.bin" "$S/big.bin" "$S/none.bin" >"$T/withbig"
"$PIPIT" decode --max-bytes 64KiB "$T/withbig" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ "$(cat "$S/unsigned.ndjson" "$S/none.ndjson")" = "$(cat "$T/out")" ] &&
    grep -q "message 2 (offset $(size "$S/unsigned.bin")): too_large: " "$T/err"
ok $? "a batch over --max-bytes in a stream is skipped, the next one decodes"

cat "$S/unsigned.bin" "$S/truncated.bin" >"$T/cut"
"$PIPIT" decode "$T/cut" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && cmp -s "$T/out" "$S/unsigned.ndjson" && grep -q "message 2 .*: truncated: " "$T/err"
ok $? "a stream ending inside a message: the complete ones decode, the last is truncated"

{ cat "$S/unsigned.bin"; printf 'garbage after the message'; } >"$T/junk"
"$PIPIT" decode "$T/junk" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && cmp -s "$T/out" "$S/unsigned.ndjson" && grep -q "message 2 .*: bad_magic: " "$T/err"
ok $? "garbage after a message is bad_magic, and decoding stops there"

# --- header lines ---------------------------------------------------------------
"$PIPIT" decode --header -k "$S/key" "$S/unsigned.bin" "$S/signed.bin" >"$T/out" 2>"$T/err"
ok $? "--header decodes"
[ "$(grep -c '^{"batch":' "$T/out")" -eq 2 ] && [ "$(grep -c '^{"kind":' "$T/out")" -eq 3 ]
ok $? "--header prints one batch line per message and the records"
head -n 1 "$T/out" | grep -q "^{\"batch\":{\"input\":\"$S/unsigned.bin\",\"message\":1,\"offset\":0,\"version\":1,\"codec\":\"zlib\",\"encoding\":\"ndjson\",\"signed\":false,\"signature\":\"none\",\"kind\":\"metric\",\"agent_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"seq\":1,\"count\":2,\"raw_len\":$(size "$S/unsigned.ndjson"),\"comp_len\":[0-9]*,\"crc\":\"[0-9a-f]\{8\}\",\"created_ns\":1700000000000000001}}$"
ok $? "the batch line holds every header field"
grep '"batch"' "$T/out" | sed -n 2p | grep -q '"signed":true,"signature":"verified","kind":"log"'
ok $? "a signed message checked with the key says verified"
"$PIPIT" decode --header "$S/signed.bin" | grep -q '"signature":"unchecked"'
ok $? "without a key it says unchecked"

"$PIPIT" decode --header-only <"$T/stream" >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && [ "$(wc -l <"$T/out")" -eq 4 ] && [ "$(grep -c '^{"batch":' "$T/out")" -eq 4 ]
ok $? "--header-only prints only the four batch lines"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/out"
    ok $? "the batch lines are valid JSON"
else
    skip "python3 not found"
fi

# --- garbage, empty input, usage ----------------------------------------------------
"$PIPIT" decode </dev/null >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && [ ! -s "$T/out" ] && [ ! -s "$T/err" ]
ok $? "empty input: nothing to do, exit 0"

bad=0
i=0
while [ $i -lt 30 ]; do
    head -c $((i * 37 + 1)) /dev/urandom >"$T/rand"
    # half of them start like a message, so that the header is read
    [ $((i % 2)) -eq 0 ] && { head -c 64 "$S/unsigned.bin"; cat "$T/rand"; } >"$T/rand2" && mv "$T/rand2" "$T/rand"
    "$PIPIT" decode -k "$S/key" "$T/rand" >/dev/null 2>&1
    [ $? -eq 1 ] || bad=$((bad + 1))
    i=$((i + 1))
done
[ $bad -eq 0 ]
ok $? "random bytes are refused with exit 1, never a crash (30 inputs)"

"$PIPIT" decode "$T/nonexistent" "$S/none.bin" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "nonexistent: No such file" "$T/err" && cmp -s "$T/out" "$S/none.ndjson"
ok $? "a missing input file is reported, the others still decode, exit 1"

"$PIPIT" decode --no-such-option >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown option is a usage error (exit 2)"
"$PIPIT" decode --max-bytes lots "$S/none.bin" >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "a bad --max-bytes is a usage error"
"$PIPIT" decode --key-file "$T/nonexistent" "$S/none.bin" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "nonexistent" "$T/err"
ok $? "a missing key file is a usage error"
"$PIPIT" decode --help | grep -q "usage: pipit decode"
ok $? "--help prints the usage"

done_testing
