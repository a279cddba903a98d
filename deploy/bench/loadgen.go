// Load client for deploy/bench/ledger and deploy/bench/audit (Go standard library only; build in
// GOPATH mode).
//
//	loadgen append      -url U [-clients 4] [-batch 1000] [-entries N] [-duration 30s] [-prefix P]
//	loadgen events      -url U [-clients 4] [-batch 100] [-entries N] [-duration 30s] [-prefix P] [-patients 1000]
//	loadgen checkpoint  -url U [-clients 8] [-duration 20s] [-prefix P]
//	loadgen patient-ids [-patients 1000]
//
// The bearer token comes from $SERVICE_TOKEN (not argv, so it stays out of `ps`).
//
// append (the ledger) and events (audit): POST /entries with batches of ledger-shaped entries, or
// POST /events with batches of ~1.3 KB AuditEvents shaped like records' read events (each about
// one of -patients patients, at random), until N items were stored or the duration is over; each
// item has its own idempotency key (prefix, client, request, position). Prints one JSON line
// {"entries","requests","seconds","rate", request latencies in ms,...}.
// checkpoint: single-entry POST /entries?wait=checkpoint in a loop per client, each latency
// measured by the client from sending the request to reading the whole answer; prints one JSON
// line with the count and the p50/p90/p99/max/mean latencies in milliseconds.
// patient-ids: the ids of the patients events are about, one per line (Patient/ + the UUID form
// of md5("bench-patient-" + n), n = 1…patients: SQL finds the same with md5()).
//
// Every answer must be 200 with one index (events: one id, none a duplicate) per item (and a
// checkpoint with wait=checkpoint); anything else is counted as an error and makes the exit
// status 1, so a broken run cannot report a fast but meaningless number.
package main

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	baseURL  string
	token    string
	clients  int
	batch    int
	maxTotal int64
	duration time.Duration
	prefix   string
	patients int
	client   *http.Client
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: loadgen append|events|checkpoint|patient-ids [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&baseURL, "url", "", "ledger base URL")
	fs.IntVar(&clients, "clients", 4, "concurrent clients (one connection each)")
	fs.IntVar(&batch, "batch", 1000, "items per request (append, events)")
	fs.Int64Var(&maxTotal, "entries", 0, "stop after this many items (append, events; 0 = no limit)")
	fs.DurationVar(&duration, "duration", 30*time.Second, "stop after this long")
	fs.StringVar(&prefix, "prefix", "", "idempotency key prefix (unique per run)")
	fs.IntVar(&patients, "patients", 1000, "patients the events are about (events, patient-ids)")
	fs.Parse(os.Args[2:])
	if patients < 1 {
		fail("-patients must be at least 1")
	}
	if mode == "patient-ids" {
		for _, id := range patientIDs() {
			fmt.Println(id)
		}
		return
	}
	token = os.Getenv("SERVICE_TOKEN")
	if baseURL == "" || token == "" {
		fail("-url and $SERVICE_TOKEN are required")
	}
	if prefix == "" {
		prefix = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        clients * 2,
			MaxIdleConnsPerHost: clients * 2,
			DisableCompression:  true,
		},
	}
	switch mode {
	case "append":
		runBatches(ledgerEntries)
	case "events":
		runBatches(auditEvents())
	case "checkpoint":
		runCheckpoint()
	default:
		fail("unknown mode " + mode)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "loadgen:", msg)
	os.Exit(2)
}

// What one kind of batch POST needs: its path, the list in its body, one item's value (after its
// idempotency key), and what the answer holds once per stored item.
type batchKind struct {
	path   string
	list   string
	value  func(buf *bytes.Buffer, rng *rand.Rand, now time.Time)
	stored []byte
	// An answer holding this is wrong even with the right count (audit: a key stored before).
	refused []byte
}

var ledgerEntries = batchKind{path: "/entries", list: "entries", value: ledgerEntry, stored: []byte(`"index":`)}

// writeItem appends {"idempotencyKey":key,<value>} to buf.
func writeItem(buf *bytes.Buffer, kind batchKind, rng *rand.Rand, key string, now time.Time) {
	buf.WriteString(`{"idempotencyKey":"`)
	buf.WriteString(key)
	buf.WriteString(`",`)
	kind.value(buf, rng, now)
	buf.WriteByte('}')
}

func randomBase64(buf *bytes.Buffer, rng *rand.Rand) {
	var raw [32]byte
	var b64 [44]byte
	rng.Read(raw[:])
	base64.StdEncoding.Encode(b64[:], raw[:])
	buf.Write(b64[:])
}

// One ledger-shaped entry: "entry":{"v":1,"commitment":b64(32),"ref":b64(32),"time":RFC 3339 ms},
// about 150 bytes in RFC 8785 form.
func ledgerEntry(buf *bytes.Buffer, rng *rand.Rand, now time.Time) {
	buf.WriteString(`"entry":{"v":1,"commitment":"`)
	randomBase64(buf, rng)
	buf.WriteString(`","ref":"`)
	randomBase64(buf, rng)
	buf.WriteString(`","time":"`)
	buf.WriteString(now.UTC().Format("2006-01-02T15:04:05.000Z"))
	buf.WriteString(`"}`)
}

// A UUID's text form of 16 bytes.
func uuidText(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomUUID(rng *rand.Rand) string {
	var b [16]byte
	rng.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return uuidText(b[:])
}

// Patient/<md5("bench-patient-n") as a UUID>, n = 1…patients; the bench's SQL computes the same.
func patientIDs() []string {
	ids := make([]string, patients)
	for n := 1; n <= patients; n++ {
		sum := md5.Sum([]byte("bench-patient-" + strconv.Itoa(n)))
		ids[n-1] = "Patient/" + uuidText(sum[:])
	}
	return ids
}

// AuditEvents as records reports a read (Services/Records/Audit/RecordsAuditEvent.swift): a
// practitioner (one of 64) reads a DiagnosticReport version of one of the patients, at `now`.
func auditEvents() batchKind {
	ids := patientIDs()
	const readers = 64
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	practitioners, accounts := make([]string, readers), make([]string, readers)
	for i := range practitioners {
		practitioners[i], accounts[i] = randomUUID(rng), randomUUID(rng)
	}
	value := func(buf *bytes.Buffer, rng *rand.Rand, now time.Time) {
		r := rng.Intn(readers)
		fmt.Fprintf(buf, `"event":{"resourceType":"AuditEvent",`+
			`"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest","display":"RESTful Operation"},`+
			`"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read","display":"read"}],`+
			`"action":"R","recorded":"%s","outcome":"0",`+
			`"agent":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/extra-security-role-type","code":"humanuser","display":"human user"}]},`+
			`"who":{"reference":"Practitioner/%s","identifier":{"system":"urn:medledger:identity:user","value":"%s"}},`+
			`"requestor":true,"network":{"address":"10.%d.%d.%d","type":"2"}}],`+
			`"source":{"site":"medledger-records","observer":{"display":"medledger-records"},`+
			`"type":[{"system":"http://terminology.hl7.org/CodeSystem/security-source-type","code":"4","display":"Application Server"}]},`+
			`"entity":[{"what":{"reference":"DiagnosticReport/%s/_history/1"},`+
			`"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"2","display":"System Object"},`+
			`"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"4","display":"Domain Resource"}},`+
			`{"what":{"reference":"%s"},`+
			`"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"1","display":"Person"},`+
			`"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1","display":"Patient"}}]}`,
			now.UTC().Format("2006-01-02T15:04:05.000Z"), practitioners[r], accounts[r], r/16, r%16, 10+r,
			randomUUID(rng), ids[rng.Intn(len(ids))])
	}
	return batchKind{path: "/events", list: "events", value: value, stored: []byte(`"id":`), refused: []byte(`"duplicate"`)}
}

func post(path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", baseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

type errorLog struct {
	count int64
	once  sync.Once
}

func (e *errorLog) note(format string, args ...any) {
	atomic.AddInt64(&e.count, 1)
	e.once.Do(func() { fmt.Fprintf(os.Stderr, "loadgen: first error: "+format+"\n", args...) })
}

func snippet(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// Latencies collected by every client, each measured from sending a request to reading its
// whole answer, in milliseconds.
type latencyLog struct {
	mu  sync.Mutex
	all []float64
}

func (l *latencyLog) add(mine []float64) {
	l.mu.Lock()
	l.all = append(l.all, mine...)
	l.mu.Unlock()
}

// summary adds the nearest-rank p50/p90/p99/max and the mean to out.
func (l *latencyLog) summary(out map[string]any) {
	sort.Float64s(l.all)
	pct := func(p float64) float64 {
		if len(l.all) == 0 {
			return 0
		}
		i := int(p/100*float64(len(l.all)) + 0.5)
		if i < 1 {
			i = 1
		}
		if i > len(l.all) {
			i = len(l.all)
		}
		return l.all[i-1]
	}
	var sum float64
	for _, v := range l.all {
		sum += v
	}
	mean := 0.0
	if len(l.all) > 0 {
		mean = sum / float64(len(l.all))
	}
	out["p50_ms"], out["p90_ms"], out["p99_ms"], out["max_ms"], out["mean_ms"] = pct(50), pct(90), pct(99), pct(100), mean
}

func runBatches(kind batchKind) {
	var done, requests int64
	var reserved int64
	var errs errorLog
	var latencies latencyLog
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(c)*7919))
			var buf bytes.Buffer
			var mine []float64
			defer func() { latencies.add(mine) }()
			for seq := 0; time.Now().Before(deadline); seq++ {
				n := int64(batch)
				if maxTotal > 0 {
					// Take a share of what is left; stop when nothing is.
					got := atomic.AddInt64(&reserved, n)
					if got-n >= maxTotal {
						return
					}
					if got > maxTotal {
						n -= got - maxTotal
					}
				}
				buf.Reset()
				buf.WriteString(`{"` + kind.list + `":[`)
				now := time.Now()
				for i := int64(0); i < n; i++ {
					if i > 0 {
						buf.WriteByte(',')
					}
					writeItem(&buf, kind, rng, prefix+"-"+strconv.Itoa(c)+"-"+strconv.Itoa(seq)+"-"+strconv.FormatInt(i, 10), now)
				}
				buf.WriteString(`]}`)
				t0 := time.Now()
				status, body, err := post(kind.path, buf.Bytes())
				elapsed := time.Since(t0)
				atomic.AddInt64(&requests, 1)
				switch {
				case err != nil:
					errs.note("%v", err)
					time.Sleep(100 * time.Millisecond)
				case status != 200:
					errs.note("HTTP %d: %s", status, snippet(body))
					time.Sleep(100 * time.Millisecond)
				case int64(bytes.Count(body, kind.stored)) != n:
					errs.note("answer has %d %s for %d items", bytes.Count(body, kind.stored), kind.stored, n)
				case kind.refused != nil && bytes.Contains(body, kind.refused):
					errs.note("answer has %s: %s", kind.refused, snippet(body))
				default:
					atomic.AddInt64(&done, n)
					mine = append(mine, float64(elapsed.Microseconds())/1000)
				}
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out := map[string]any{
		"entries": done, "requests": requests, "errors": errs.count, "seconds": secs, "batch": batch, "clients": clients,
		"rate": float64(done) / secs, "client_cpu_seconds": cpuSeconds(),
	}
	latencies.summary(out)
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	if errs.count > 0 {
		os.Exit(1)
	}
}

func runCheckpoint() {
	var latencies latencyLog
	var errs errorLog
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(c)*104729))
			var buf bytes.Buffer
			var mine []float64
			defer func() { latencies.add(mine) }()
			for seq := 0; time.Now().Before(deadline); seq++ {
				buf.Reset()
				buf.WriteString(`{"entries":[`)
				writeItem(&buf, ledgerEntries, rng, prefix+"-"+strconv.Itoa(c)+"-"+strconv.Itoa(seq), time.Now())
				buf.WriteString(`]}`)
				t0 := time.Now()
				status, body, err := post("/entries?wait=checkpoint", buf.Bytes())
				elapsed := time.Since(t0)
				switch {
				case err != nil:
					errs.note("%v", err)
					time.Sleep(100 * time.Millisecond)
				case status != 200:
					errs.note("HTTP %d: %s", status, snippet(body))
					time.Sleep(100 * time.Millisecond)
				case !bytes.Contains(body, []byte(`"checkpoint"`)) || !bytes.Contains(body, []byte(`"inclusionProof"`)):
					errs.note("answer without checkpoint or proof: %s", snippet(body))
				default:
					mine = append(mine, float64(elapsed.Microseconds())/1000)
				}
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out := map[string]any{"count": len(latencies.all), "errors": errs.count, "seconds": secs, "client_cpu_seconds": cpuSeconds()}
	latencies.summary(out)
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	if errs.count > 0 || len(latencies.all) == 0 {
		os.Exit(1)
	}
}
