// Load client for deploy/bench/ledger (Go standard library only; build in GOPATH mode).
//
//	loadgen append     -url U [-clients 4] [-batch 1000] [-entries N] [-duration 30s] [-prefix P]
//	loadgen checkpoint -url U [-clients 8] [-duration 20s] [-prefix P]
//
// The bearer token comes from $SERVICE_TOKEN (not argv, so it stays out of `ps`).
//
// append: POST /entries with batches of ledger-shaped entries until N entries were acknowledged
// or the duration is over; prints one JSON line {"entries","requests","seconds","rate",...}.
// checkpoint: single-entry POST /entries?wait=checkpoint in a loop per client, each latency
// measured by the client from sending the request to reading the whole answer; prints one JSON
// line with the count and the p50/p90/p99/max/mean latencies in milliseconds.
//
// Every answer must be 200 with one index per entry (and a checkpoint with wait=checkpoint);
// anything else is counted as an error and makes the exit status 1, so a broken run cannot
// report a fast but meaningless number.
package main

import (
	"bytes"
	"encoding/base64"
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
	client   *http.Client
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: loadgen append|checkpoint [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&baseURL, "url", "", "ledger base URL")
	fs.IntVar(&clients, "clients", 4, "concurrent clients (one connection each)")
	fs.IntVar(&batch, "batch", 1000, "entries per request (append)")
	fs.Int64Var(&maxTotal, "entries", 0, "stop after this many entries (append; 0 = no limit)")
	fs.DurationVar(&duration, "duration", 30*time.Second, "stop after this long")
	fs.StringVar(&prefix, "prefix", "", "idempotency key prefix (unique per run)")
	fs.Parse(os.Args[2:])
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
		runAppend()
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

// One ledger-shaped entry: {"v":1,"commitment":b64(32),"ref":b64(32),"time":RFC 3339 ms},
// about 150 bytes in RFC 8785 form.
func appendEntry(buf *bytes.Buffer, rng *rand.Rand, key string, now time.Time) {
	var raw [32]byte
	var b64 [44]byte
	buf.WriteString(`{"idempotencyKey":"`)
	buf.WriteString(key)
	buf.WriteString(`","entry":{"v":1,"commitment":"`)
	rng.Read(raw[:])
	base64.StdEncoding.Encode(b64[:], raw[:])
	buf.Write(b64[:])
	buf.WriteString(`","ref":"`)
	rng.Read(raw[:])
	base64.StdEncoding.Encode(b64[:], raw[:])
	buf.Write(b64[:])
	buf.WriteString(`","time":"`)
	buf.WriteString(now.UTC().Format("2006-01-02T15:04:05.000Z"))
	buf.WriteString(`"}}`)
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

var indexField = []byte(`"index":`)

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

func runAppend() {
	var done, requests int64
	var reserved int64
	var errs errorLog
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(time.Now().UnixNano() + int64(c)*7919))
			var buf bytes.Buffer
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
				buf.WriteString(`{"entries":[`)
				now := time.Now()
				for i := int64(0); i < n; i++ {
					if i > 0 {
						buf.WriteByte(',')
					}
					appendEntry(&buf, rng, prefix+"-"+strconv.Itoa(c)+"-"+strconv.Itoa(seq)+"-"+strconv.FormatInt(i, 10), now)
				}
				buf.WriteString(`]}`)
				status, body, err := post("/entries", buf.Bytes())
				atomic.AddInt64(&requests, 1)
				switch {
				case err != nil:
					errs.note("%v", err)
					time.Sleep(100 * time.Millisecond)
				case status != 200:
					errs.note("HTTP %d: %s", status, snippet(body))
					time.Sleep(100 * time.Millisecond)
				case int64(bytes.Count(body, indexField)) != n:
					errs.note("answer has %d indices for %d entries", bytes.Count(body, indexField), n)
				default:
					atomic.AddInt64(&done, n)
				}
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{
		"entries": done, "requests": requests, "errors": errs.count, "seconds": secs,
		"rate": float64(done) / secs, "client_cpu_seconds": cpuSeconds(),
	})
	fmt.Println(string(out))
	if errs.count > 0 {
		os.Exit(1)
	}
}

func runCheckpoint() {
	var mu sync.Mutex
	var latencies []float64
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
			for seq := 0; time.Now().Before(deadline); seq++ {
				buf.Reset()
				buf.WriteString(`{"entries":[`)
				appendEntry(&buf, rng, prefix+"-"+strconv.Itoa(c)+"-"+strconv.Itoa(seq), time.Now())
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
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	sort.Float64s(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p/100*float64(len(latencies)) + 0.5)
		if i < 1 {
			i = 1
		}
		if i > len(latencies) {
			i = len(latencies)
		}
		return latencies[i-1] // nearest rank
	}
	var sum float64
	for _, l := range latencies {
		sum += l
	}
	mean := 0.0
	if len(latencies) > 0 {
		mean = sum / float64(len(latencies))
	}
	out, _ := json.Marshal(map[string]any{
		"count": len(latencies), "errors": errs.count, "seconds": secs,
		"p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100), "mean_ms": mean,
		"client_cpu_seconds": cpuSeconds(),
	})
	fmt.Println(string(out))
	if errs.count > 0 || len(latencies) == 0 {
		os.Exit(1)
	}
}
