package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rogpeppe/go-internal/testscript"
)

// The reading side of S3 in the scripts (s3_read.txtar): objects put by
// another client, and damage. Registered here rather than in
// script_test.go's table, which the S3 commands of the writing side fill.
func init() {
	scriptCmds["s3put"] = cmdS3Put
	scriptCmds["flip"] = cmdFlip
}

// cmdS3Put: s3put BUCKET KEY FILE puts FILE as the object KEY with a plain
// PutObject through the SDK, not etcdsafe: no metadata, and a CRC-32C the
// server computes afresh, so that it vouches for whatever FILE holds (a
// replaced object, as an attacker or a broken copy job leaves it).
func cmdS3Put(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: s3put BUCKET KEY FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = scriptS3(ts).Server.Client(scriptTB{ts: ts}).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(args[0]), Key: aws.String(args[1]), Body: bytes.NewReader(b),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	})
	ts.Check(err)
}

// cmdFlip: flip FILE OFFSET inverts the low bit of the byte at OFFSET
// (from the end when negative: -1 is the last byte), as bit rot does.
func cmdFlip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flip FILE OFFSET")
	}
	off, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		ts.Fatalf("flip: bad offset %q", args[1])
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	if off < 0 {
		off += int64(len(b))
	}
	if off < 0 || off >= int64(len(b)) {
		ts.Fatalf("flip: %s has %d bytes, no offset %s", args[0], len(b), args[1])
	}
	b[off] ^= 1
	ts.Check(os.WriteFile(p, b, 0o600))
}
