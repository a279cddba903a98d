// Command tlogcheck is the independent oracle for the MedLedger transparency log.
//
// It checks signed checkpoints, inclusion proofs and consistency proofs that the
// end-to-end tests collected from a running ledger, using only the Go standard
// library and golang.org/x/mod/sumdb/{note,tlog} (the Go checksum database's
// RFC 6962 implementation, Debian package golang-golang-x-mod-dev). It shares no
// code with the service.
//
// Usage: tlogcheck INPUT.json
//
// INPUT.json:
//
//	{
//	  "vkey": "<signed-note verifier key>",
//	  "origin": "<log origin>",
//	  "checkpoints": ["<signed checkpoint note text>", ...],
//	  "inclusion":   [{"checkpoint": i, "index": n, "leafData": "<b64>", "hashes": ["<b64>", ...]}],
//	  "consistency": [{"from": i, "to": j, "hashes": ["<b64>", ...]}],
//	  "tampered":    [{"kind": "checkpoint", "name": "...", "note": "<text>"},
//	                  {"kind": "inclusion", "name": "...", <inclusion fields>},
//	                  {"kind": "consistency", "name": "...", <consistency fields>}]
//	}
//
// "checkpoint", "from" and "to" index into "checkpoints". Every genuine item must
// verify; every tampered item must be well-formed input (valid base64, checkpoint
// indexes in range) and must be rejected by verification. On success it prints
//
//	ok: N checkpoints, M inclusion, K consistency, T tampered rejected
//
// and exits 0. A rejected genuine item or an accepted tampered item prints the
// reason and exits 1; malformed input exits 2.
//
// Build in GOPATH mode (Go 1.19):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=/tmp/gocache go run ./Tests/oracle/tlogcheck INPUT.json
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusionCase struct {
	Kind       string   `json:"kind,omitempty"`
	Name       string   `json:"name,omitempty"`
	Checkpoint *int     `json:"checkpoint"`
	Index      *int64   `json:"index"`
	LeafData   *string  `json:"leafData"`
	Hashes     []string `json:"hashes"`
}

type consistencyCase struct {
	Kind   string   `json:"kind,omitempty"`
	Name   string   `json:"name,omitempty"`
	From   *int     `json:"from"`
	To     *int     `json:"to"`
	Hashes []string `json:"hashes"`
}

type input struct {
	VKey        string            `json:"vkey"`
	Origin      string            `json:"origin"`
	Checkpoints []string          `json:"checkpoints"`
	Inclusion   []inclusionCase   `json:"inclusion"`
	Consistency []consistencyCase `json:"consistency"`
	Tampered    []json.RawMessage `json:"tampered"`
}

// checkpoint is a parsed and signature-verified checkpoint.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// badInput marks errors in the input file itself (exit 2), as opposed to
// verification failures.
type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

func inputErr(format string, args ...interface{}) error {
	return &badInput{fmt.Sprintf(format, args...)}
}

type checker struct {
	verifier note.Verifier
	origin   string
	cps      []checkpoint
}

// openCheckpoint verifies the note signature with the log key and parses the
// C2SP tlog-checkpoint body: origin line, decimal size line, base64 root line,
// then optional extension lines.
func (c *checker) openCheckpoint(text string) (checkpoint, error) {
	n, err := note.Open([]byte(text), note.VerifierList(c.verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %v", err)
	}
	if len(n.Sigs) == 0 {
		return checkpoint{}, errors.New("no verified signature")
	}
	lines := strings.Split(n.Text, "\n")
	// n.Text ends with "\n", so the last element is empty.
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, fmt.Errorf("checkpoint body has %d lines, want at least 3", len(lines)-1)
	}
	origin, sizeText, rootText := lines[0], lines[1], lines[2]
	if origin != c.origin {
		return checkpoint{}, fmt.Errorf("checkpoint origin %q, want %q", origin, c.origin)
	}
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return checkpoint{}, fmt.Errorf("checkpoint size line %q is not a canonical decimal", sizeText)
	}
	rootBytes, err := base64.StdEncoding.DecodeString(rootText)
	if err != nil || len(rootBytes) != tlog.HashSize || base64.StdEncoding.EncodeToString(rootBytes) != rootText {
		return checkpoint{}, fmt.Errorf("checkpoint root line %q is not a canonical base64 SHA-256 hash", rootText)
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	if size == 0 {
		// RFC 6962: the empty tree's hash is SHA-256 of the empty string.
		empty, _ := tlog.ParseHash("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
		if root != empty {
			return checkpoint{}, errors.New("size-0 checkpoint with a root other than SHA-256(\"\")")
		}
	}
	return checkpoint{origin: origin, size: size, root: root}, nil
}

func decodeHashes(hs []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(hs))
	for i, s := range hs {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, inputErr("hash %d %q is not base64 of 32 bytes", i, s)
		}
		var h tlog.Hash
		copy(h[:], b)
		out = append(out, h)
	}
	return out, nil
}

func (c *checker) cp(i *int, field string) (checkpoint, error) {
	if i == nil {
		return checkpoint{}, inputErr("missing %q", field)
	}
	if *i < 0 || *i >= len(c.cps) {
		return checkpoint{}, inputErr("%s %d out of range (have %d checkpoints)", field, *i, len(c.cps))
	}
	return c.cps[*i], nil
}

func (c *checker) checkInclusion(ic inclusionCase) error {
	cp, err := c.cp(ic.Checkpoint, "checkpoint")
	if err != nil {
		return err
	}
	if ic.Index == nil || ic.LeafData == nil {
		return inputErr("inclusion case needs index and leafData")
	}
	data, err := base64.StdEncoding.DecodeString(*ic.LeafData)
	if err != nil {
		return inputErr("leafData is not base64: %v", err)
	}
	proof, err := decodeHashes(ic.Hashes)
	if err != nil {
		return err
	}
	if *ic.Index < 0 || *ic.Index >= cp.size {
		return fmt.Errorf("index %d not below tree size %d", *ic.Index, cp.size)
	}
	return tlog.CheckRecord(tlog.RecordProof(proof), cp.size, cp.root, *ic.Index, tlog.RecordHash(data))
}

func (c *checker) checkConsistency(cc consistencyCase) error {
	from, err := c.cp(cc.From, "from")
	if err != nil {
		return err
	}
	to, err := c.cp(cc.To, "to")
	if err != nil {
		return err
	}
	proof, err := decodeHashes(cc.Hashes)
	if err != nil {
		return err
	}
	if from.size < 1 || from.size > to.size {
		return fmt.Errorf("sizes %d -> %d do not allow a consistency proof", from.size, to.size)
	}
	return tlog.CheckTree(tlog.TreeProof(proof), to.size, to.root, from.size, from.root)
}

func (c *checker) checkTampered(raw json.RawMessage) (string, error) {
	var head struct {
		Kind string  `json:"kind"`
		Name string  `json:"name"`
		Note *string `json:"note"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", inputErr("tampered case: %v", err)
	}
	label := head.Kind + " " + strconv.Quote(head.Name)
	switch head.Kind {
	case "checkpoint":
		if head.Note == nil {
			return label, inputErr("tampered checkpoint %s has no note", label)
		}
		_, err := c.openCheckpoint(*head.Note)
		return label, err
	case "inclusion":
		var ic inclusionCase
		if err := json.Unmarshal(raw, &ic); err != nil {
			return label, inputErr("tampered %s: %v", label, err)
		}
		return label, c.checkInclusion(ic)
	case "consistency":
		var cc consistencyCase
		if err := json.Unmarshal(raw, &cc); err != nil {
			return label, inputErr("tampered %s: %v", label, err)
		}
		return label, c.checkConsistency(cc)
	default:
		return label, inputErr("tampered case has unknown kind %q", head.Kind)
	}
}

func run(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 2, err
	}
	var in input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return 2, fmt.Errorf("parsing %s: %v", path, err)
	}
	if in.Origin == "" {
		return 2, errors.New("input has no origin")
	}
	v, err := note.NewVerifier(in.VKey)
	if err != nil {
		return 2, fmt.Errorf("bad vkey: %v", err)
	}
	if v.Name() != in.Origin {
		return 1, fmt.Errorf("verifier key name %q differs from the log origin %q", v.Name(), in.Origin)
	}
	if len(in.Checkpoints) == 0 {
		return 2, errors.New("input has no checkpoints")
	}
	c := &checker{verifier: v, origin: in.Origin}

	failures := 0
	fail := func(format string, args ...interface{}) {
		failures++
		fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	}

	for i, text := range in.Checkpoints {
		cp, err := c.openCheckpoint(text)
		if err != nil {
			fail("checkpoint %d rejected: %v\n%s", i, err, text)
		}
		c.cps = append(c.cps, cp) // keep indexes aligned even on failure
	}
	if failures > 0 {
		return 1, fmt.Errorf("%d genuine checkpoint(s) rejected", failures)
	}
	// Two checkpoints of the same size must commit to the same tree.
	bySize := map[int64]int{}
	for i, cp := range c.cps {
		if j, ok := bySize[cp.size]; ok && c.cps[j].root != cp.root {
			fail("checkpoints %d and %d both have size %d but different roots (fork)", j, i, cp.size)
		}
		bySize[cp.size] = i
	}

	for i, ic := range in.Inclusion {
		if err := c.checkInclusion(ic); err != nil {
			var bi *badInput
			if errors.As(err, &bi) {
				return 2, fmt.Errorf("inclusion %d: %v", i, err)
			}
			fail("inclusion %d (checkpoint %v, index %v) rejected: %v", i, deref(ic.Checkpoint), deref64(ic.Index), err)
		}
	}
	for i, cc := range in.Consistency {
		if err := c.checkConsistency(cc); err != nil {
			var bi *badInput
			if errors.As(err, &bi) {
				return 2, fmt.Errorf("consistency %d: %v", i, err)
			}
			fail("consistency %d (%v -> %v) rejected: %v", i, deref(cc.From), deref(cc.To), err)
		}
	}
	rejected := 0
	for i, raw := range in.Tampered {
		label, err := c.checkTampered(raw)
		var bi *badInput
		switch {
		case err == nil:
			fail("tampered case %d (%s) was ACCEPTED", i, label)
		case errors.As(err, &bi):
			return 2, fmt.Errorf("tampered case %d (%s): %v", i, label, err)
		default:
			rejected++
		}
	}
	if failures > 0 {
		return 1, fmt.Errorf("%d verification failure(s)", failures)
	}
	fmt.Printf("ok: %d checkpoints, %d inclusion, %d consistency, %d tampered rejected\n",
		len(in.Checkpoints), len(in.Inclusion), len(in.Consistency), rejected)
	return 0, nil
}

func deref(p *int) interface{} {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func deref64(p *int64) interface{} {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck INPUT.json")
		os.Exit(2)
	}
	code, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlogcheck:", err)
	}
	os.Exit(code)
}
