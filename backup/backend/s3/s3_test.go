package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/backendtest"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
)

// fakeEnv points the SDK at nothing of the machine's AWS configuration
// and puts static test credentials in two variables.
func fakeEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "",
		"FAKE_S3_ID": "fakeid", "FAKE_S3_SECRET": "fakesecret",
	} {
		t.Setenv(k, v)
	}
}

// newFake starts a fake S3 server and returns a config for it with fast
// retries.
func newFake(t *testing.T) (*fakeS3, s3be.Config) {
	fakeEnv(t)
	f := newFakeS3("bkt")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, s3be.Config{
		Endpoint: srv.URL, Bucket: "bkt", Prefix: "pre/fix",
		AccessKeyIDEnv: "FAKE_S3_ID", SecretAccessKeyEnv: "FAKE_S3_SECRET",
		MaxAttempts: 5, MaxBackoff: 5 * time.Millisecond,
	}
}

func handle(t *testing.T, typ backend.FileType, data []byte) backend.Handle {
	t.Helper()
	sum := sha256.Sum256(data)
	return backend.Handle{Type: typ, Name: hex.EncodeToString(sum[:])}
}

// The suite against the fake too: the layout and range handling are
// checked without the lab.
func TestConformanceFake(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		_, cfg := newFake(t)
		be, err := s3be.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

// The S3 client traps: no trailing or header checksums, no aws-chunked
// encoding, a conditional PUT with its length, path-style keys in
// restic's layout.
func TestRequestShape(t *testing.T) {
	f, cfg := newFake(t)
	ctx := context.Background()
	be, err := s3be.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("pack"), 1000)
	h := handle(t, backend.PackFile, data)
	if err := be.Save(ctx, h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	put := f.requests[len(f.requests)-1]
	f.mu.Unlock()
	if want := "/bkt/pre/fix/data/" + h.Name[:2] + "/" + h.Name; put.URL.Path != want {
		t.Errorf("PUT path %s, want %s (path-style, restic's layout)", put.URL.Path, want)
	}
	for k := range put.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum") || lk == "x-amz-trailer" || lk == "x-amz-sdk-checksum-algorithm" {
			t.Errorf("PUT carries %s: checksums must only be sent when required", k)
		}
	}
	if ce := put.Header.Get("Content-Encoding"); strings.Contains(ce, "aws-chunked") {
		t.Errorf("PUT uses Content-Encoding %q", ce)
	}
	if put.Header.Get("If-None-Match") != "*" {
		t.Errorf("PUT without If-None-Match: *")
	}
	if put.ContentLength != int64(len(data)) {
		t.Errorf("PUT Content-Length %d, want %d", put.ContentLength, len(data))
	}
	if n := f.count(http.MethodPut, ""); n != 1 {
		t.Errorf("%d PUTs for one file, want 1", n)
	}
}

// Retries: throttling, 5xx and a connection dropped mid-upload are
// retried with the whole body again; a storm longer than the attempts
// fails cleanly, leaving nothing.
func TestRetries(t *testing.T) {
	hangUp := func(w http.ResponseWriter) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}
	reset := func(_ *fakeS3, w http.ResponseWriter, r *http.Request) {
		// read part of the upload, then drop the connection
		_, _ = io.CopyN(io.Discard, r.Body, 100)
		hangUp(w)
	}
	answerLost := func(f *fakeS3, w http.ResponseWriter, r *http.Request) {
		// the server stores the file, but its answer never arrives
		f.handle(httptest.NewRecorder(), r)
		hangUp(w)
	}
	status := func(st int, code string) func(*fakeS3, http.ResponseWriter, *http.Request) {
		return func(_ *fakeS3, w http.ResponseWriter, _ *http.Request) { s3Error(w, st, code) }
	}
	for _, tc := range []struct {
		name   string
		faults int // the first faults PUTs fail
		fail   func(f *fakeS3, w http.ResponseWriter, r *http.Request)
		ok     bool
	}{
		{"503 SlowDown", 4, status(503, "SlowDown"), true},
		{"429", 2, status(429, "TooManyRequests"), true},
		{"500", 3, status(500, "InternalError"), true},
		{"502 from a proxy", 1, func(_ *fakeS3, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }, true},
		{"reset mid-upload", 2, reset, true},
		{"answer lost after the store", 1, answerLost, true},
		{"503 storm beyond the attempts", 100, status(503, "SlowDown"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cfg := newFake(t)
			ctx := context.Background()
			be, err := s3be.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var faults atomic.Int32
			f.fault = func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method != http.MethodPut || faults.Add(1) > int32(tc.faults) {
					return false
				}
				tc.fail(f, w, r)
				return true
			}
			data := bytes.Repeat([]byte{7}, 64<<10)
			h := handle(t, backend.PackFile, data)
			err = be.Save(ctx, h, bytes.NewReader(data))
			if !tc.ok {
				if !errors.Is(err, s3be.ErrUnavailable) {
					t.Errorf("save in a storm: %v, want ErrUnavailable", err)
				}
				if _, err := be.Stat(ctx, h); !backend.IsNotExist(err) {
					t.Errorf("a failed save left a file: %v", err)
				}
				if n := f.count(http.MethodPut, ""); n != cfg.MaxAttempts {
					t.Errorf("%d PUTs, want %d attempts", n, cfg.MaxAttempts)
				}
				return
			}
			if err != nil {
				t.Fatalf("save: %v", err)
			}
			got, err := backend.ReadAll(ctx, be, h)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("after retries: %v, %d bytes, want %d", err, len(got), len(data))
			}
		})
	}
}

// After a lost answer, a file that another writer stored first with
// other bytes is still ErrExist: only our own landed attempt counts.
func TestLostAnswerOtherContent(t *testing.T) {
	f, cfg := newFake(t)
	ctx := context.Background()
	be, err := s3be.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("ours")
	h := handle(t, backend.SnapshotFile, data)
	var once atomic.Bool
	f.fault = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.Method != http.MethodPut || once.Swap(true) {
			return false
		}
		// someone else's bytes land under the name; our answer is lost
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.objects["pre/fix/snapshots/"+h.Name] = []byte("theirs")
		f.mu.Unlock()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return true
	}
	if err := be.Save(ctx, h, bytes.NewReader(data)); !errors.Is(err, backend.ErrExist) {
		t.Errorf("save: %v, want ErrExist", err)
	}
}

// A download that breaks off in the middle of the body (after the
// headers, where the SDK's retryer no longer helps) is resumed from
// where it stopped, for whole files and ranges.
func TestLoadResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks int // the first breaks GETs send half their body, then hang up
		length int
		offset int64
		ok     bool
	}{
		{"whole file, once", 1, 0, 0, true},
		{"range, twice", 2, 50000, 70000, true},
		{"tail, once", 1, 0, 100000, true},
		{"more breaks than resumes", 100, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cfg := newFake(t)
			ctx := context.Background()
			be, err := s3be.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 200000)
			for i := range data {
				data[i] = byte(i * 7)
			}
			h := handle(t, backend.PackFile, data)
			if err := be.Save(ctx, h, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			var breaks atomic.Int32
			f.fault = func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/data/") || breaks.Add(1) > int32(tc.breaks) {
					return false
				}
				rec := httptest.NewRecorder()
				f.handle(rec, r)
				body := rec.Body.Bytes()
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return true
				}
				fmt.Fprintf(buf, "HTTP/1.1 %d X\r\nContent-Length: %d\r\nETag: \"x\"\r\n\r\n", rec.Code, len(body))
				_, _ = buf.Write(body[:len(body)/2])
				_ = buf.Flush()
				conn.Close()
				return true
			}
			rd, err := be.Load(ctx, h, tc.length, tc.offset)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rd)
				rd.Close()
			}
			want := data[tc.offset:]
			if tc.length > 0 {
				want = want[:tc.length]
			}
			if !tc.ok {
				if err == nil {
					t.Errorf("a body that always breaks off was read without an error")
				}
				return
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("load: %v, %d bytes, want %d", err, len(got), len(want))
			}
		})
	}
}

// A long 503 storm across concurrent saves: the SDK's default client-side
// retry quota (500 tokens, 5 per retry) would give up after about 100
// retries in total, failing saves that patience would have carried.
func TestStormAcrossSaves(t *testing.T) {
	f, cfg := newFake(t)
	cfg.MaxAttempts, cfg.MaxBackoff = 60, time.Millisecond
	ctx := context.Background()
	be, err := s3be.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var faults atomic.Int32
	f.fault = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.Method != http.MethodPut || faults.Add(1) > 200 {
			return false
		}
		s3Error(w, 503, "SlowDown")
		return true
	}
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			data := []byte{byte(i)}
			errs <- be.Save(ctx, handle(t, backend.IndexFile, data), bytes.NewReader(data))
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("save through a 200-response storm: %v", err)
		}
	}
}

// Each failure an operator can act on is recognisable (errors.Is) and
// worded.
func TestOperatorErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string // requests that fail; "" all
		status int
		code   string
		want   error
		text   string
	}{
		{"wrong secret", "", 403, "SignatureDoesNotMatch", s3be.ErrCredentials, "rejected the credentials"},
		{"unknown key", "", 403, "InvalidAccessKeyId", s3be.ErrCredentials, "rejected the credentials"},
		{"versitygw unknown key", "", 404, "XAdminUserNotFound", s3be.ErrCredentials, "rejected the credentials"},
		{"read-only key", http.MethodPut, 403, "AccessDenied", s3be.ErrAccessDenied, "read-only"},
		{"disk full", http.MethodPut, 507, "InsufficientStorage", s3be.ErrFull, "no space left"},
		{"quota", http.MethodPut, 403, "QuotaExceeded", s3be.ErrFull, "no space left"},
		{"minio full", http.MethodPut, 503, "XMinioStorageFull", s3be.ErrFull, "no space left"},
		{"bucket gone", http.MethodPut, 404, "NoSuchBucket", s3be.ErrNoBucket, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cfg := newFake(t)
			cfg.MaxAttempts = 2
			f.fault = func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if tc.method != "" && r.Method != tc.method {
					return false
				}
				s3Error(w, tc.status, tc.code)
				return true
			}
			ctx := context.Background()
			var err error
			be, err := s3be.Open(ctx, cfg)
			if err == nil {
				data := []byte("snapshot")
				err = be.Save(ctx, handle(t, backend.SnapshotFile, data), bytes.NewReader(data))
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), tc.code) {
				t.Errorf("got %v\nwant %v, with %q and the server's code", err, tc.want, tc.text)
			}
			if strings.Contains(err.Error(), "RequestID") {
				t.Errorf("error carries SDK noise: %v", err)
			}
		})
	}
}

// Without credentials the SDK's chain must not probe the EC2
// instance-metadata service unless asked to.
func TestNoInstanceMetadataUnlessAsked(t *testing.T) {
	for _, ask := range []bool{false, true} {
		t.Run(map[bool]string{false: "not asked", true: "asked"}[ask], func(t *testing.T) {
			_, cfg := newFake(t)
			var hits atomic.Int32
			imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.WriteHeader(http.StatusNotFound)
			}))
			defer imds.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "")
			cfg.AccessKeyIDEnv, cfg.SecretAccessKeyEnv, cfg.EC2Metadata = "", "", ask
			_, err := s3be.Open(context.Background(), cfg)
			if !errors.Is(err, s3be.ErrCredentials) || !strings.Contains(err.Error(), "no S3 credentials found") {
				t.Errorf("open without credentials: %v", err)
			}
			if got := hits.Load() > 0; got != ask {
				t.Errorf("instance metadata asked: %v, want %v", got, ask)
			}
		})
	}
}

// Create refuses a prefix that holds objects, like a non-empty directory;
// a missing bucket is created.
func TestCreate(t *testing.T) {
	f, cfg := newFake(t)
	ctx := context.Background()
	if _, err := s3be.Create(ctx, cfg); err != nil {
		t.Fatalf("create on an empty prefix: %v", err)
	}
	f.objects["pre/fix/stray"] = []byte("x")
	if _, err := s3be.Create(ctx, cfg); err == nil || !strings.Contains(err.Error(), "already holds objects") {
		t.Errorf("create on a used prefix: %v", err)
	}
	cfg.Prefix = "pre/fixed" // a sibling whose name starts alike is not inside
	if _, err := s3be.Create(ctx, cfg); err != nil {
		t.Errorf("create next to a used prefix: %v", err)
	}
}
