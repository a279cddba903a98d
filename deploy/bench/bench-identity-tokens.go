// Token fetcher for deploy/bench/identity (Go standard library only; build in GOPATH mode:
// `go build -o X bench-identity-tokens.go`).
//
//	bench-identity-tokens -url IDENTITY_URL -n 16000 [-clients 8] [-duration 120s]
//	                      [-scope medledger/ledger.append] -out FILE
//
// Asks identity for access tokens by client_credentials (POST /auth/token, HTTP Basic with
// $SERVICE_CLIENT_ID / $SERVICE_CLIENT_SECRET, form-urlencoded per RFC 6749 2.3.1; from the
// environment, not argv, so they stay out of `ps`) from a few concurrent clients until it holds n
// distinct tokens or the duration is over, and writes them to FILE, one per line (mode 0600).
// Prints one JSON line {"tokens","requests","errors","seconds","rate","min_exp","ttl_seconds"};
// min_exp is the earliest expiry (Unix seconds) of the tokens written.
//
// Every answer must be 200 with an access_token whose (unverified) payload carries the requested
// scope; anything else is counted as an error and makes the exit status 1. A 4xx answer (bad
// credentials, invalid_scope, throttling) stops the whole fetch: retrying would not help.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

type claims struct {
	Exp   int64  `json:"exp"`
	Iat   int64  `json:"iat"`
	Scope string `json:"scope"`
}

type errorLog struct {
	count int64
	once  sync.Once
}

func (e *errorLog) note(format string, args ...any) {
	atomic.AddInt64(&e.count, 1)
	e.once.Do(func() { fmt.Fprintf(os.Stderr, "bench-identity-tokens: first error: "+format+"\n", args...) })
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench-identity-tokens:", msg)
	os.Exit(2)
}

func snippet(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

// payloadClaims decodes the JWT payload without verifying it (the ledger verifies; this only
// checks that the token is the one asked for).
func payloadClaims(token string) (claims, error) {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("not a JWS compact token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(raw, &c)
	return c, err
}

func main() {
	var (
		baseURL  string
		want     int
		clients  int
		duration time.Duration
		scope    string
		outPath  string
	)
	flag.StringVar(&baseURL, "url", "", "identity base URL")
	flag.IntVar(&want, "n", 16000, "distinct tokens to fetch")
	flag.IntVar(&clients, "clients", 8, "concurrent clients (one connection each)")
	flag.DurationVar(&duration, "duration", 120*time.Second, "stop after this long")
	flag.StringVar(&scope, "scope", "medledger/ledger.append", "scope to request (empty: all allowed)")
	flag.StringVar(&outPath, "out", "", "file for the tokens, one per line")
	flag.Parse()
	id, secret := os.Getenv("SERVICE_CLIENT_ID"), os.Getenv("SERVICE_CLIENT_SECRET")
	if baseURL == "" || outPath == "" || id == "" || secret == "" {
		fail("-url, -out, $SERVICE_CLIENT_ID and $SERVICE_CLIENT_SECRET are required")
	}
	if want < 1 || clients < 1 {
		fail("-n and -clients must be positive")
	}
	if u, err := url.Parse(baseURL); err != nil || u.Hostname() != "127.0.0.1" {
		fail("-url must be an http://127.0.0.1:PORT address (benchmarks only load this machine)")
	}

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	body := []byte(form.Encode())
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        clients * 2,
			MaxIdleConnsPerHost: clients * 2,
			DisableCompression:  true,
		},
	}

	var (
		mu       sync.Mutex
		seen     = make(map[string]struct{}, want)
		tokens   = make([]string, 0, want)
		minExp   int64
		ttl      int64
		requests int64
		errs     errorLog
		refused  atomic.Bool // a 4xx answer: retrying cannot help, so everyone stops
	)
	deadline := time.Now().Add(duration)
	start := time.Now()
	full := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) >= want
	}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && !full() && !refused.Load() {
				atomic.AddInt64(&requests, 1)
				req, err := http.NewRequest("POST", baseURL+"/auth/token", bytes.NewReader(body))
				if err != nil {
					errs.note("%v", err)
					return
				}
				req.Header.Set("Authorization", basic)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					errs.note("%v", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				data, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs.note("HTTP %d: %s (%v)", resp.StatusCode, snippet(data), err)
					if resp.StatusCode >= 400 && resp.StatusCode < 500 {
						refused.Store(true)
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				var answer tokenAnswer
				if err := json.Unmarshal(data, &answer); err != nil || answer.AccessToken == "" {
					errs.note("no access_token in %s", snippet(data))
					continue
				}
				cl, err := payloadClaims(answer.AccessToken)
				if err != nil {
					errs.note("undecodable token payload: %v", err)
					continue
				}
				if scope != "" && !strings.Contains(" "+cl.Scope+" ", " "+scope+" ") {
					errs.note("token scope %q lacks %q", cl.Scope, scope)
					refused.Store(true)
					continue
				}
				mu.Lock()
				if _, dup := seen[answer.AccessToken]; !dup && len(tokens) < want {
					seen[answer.AccessToken] = struct{}{}
					tokens = append(tokens, answer.AccessToken)
					if minExp == 0 || cl.Exp < minExp {
						minExp = cl.Exp
					}
					ttl = cl.Exp - cl.Iat
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()

	f, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fail(err.Error())
	}
	var buf bytes.Buffer
	for _, t := range tokens {
		buf.WriteString(t)
		buf.WriteByte('\n')
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		fail(err.Error())
	}
	if err := f.Close(); err != nil {
		fail(err.Error())
	}
	out, _ := json.Marshal(map[string]any{
		"tokens": len(tokens), "requests": requests, "errors": errs.count, "seconds": secs,
		"rate": float64(len(tokens)) / secs, "min_exp": minExp, "ttl_seconds": ttl,
	})
	fmt.Println(string(out))
	if errs.count > 0 || len(tokens) == 0 {
		os.Exit(1)
	}
}
