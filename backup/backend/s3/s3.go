// Package s3 is the repository backend for an S3 bucket (AWS or a
// self-hosted server such as versitygw or MinIO), in restic's layout under
// a prefix: config, keys/, locks/, snapshots/, index/, data/xx/. Stock
// restic opens the same repository as s3:http(s)://host/bucket/prefix.
//
// It talks S3 through github.com/aws/aws-sdk-go-v2 with the settings that
// self-hosted servers need: path-style addressing (automatic for hosts
// outside amazonaws.com), checksums only when an operation requires them
// (the SDK's default trailing checksums break many servers), a seekable
// body and one PUT per file, the SDK's standard retryer with backoff on
// throttling, 5xx and broken connections (without its client-side retry
// quota, which would give up during a 503 storm), downloads resumed
// where they broke off mid-body, and no EC2 instance-metadata probing
// unless Config.EC2Metadata asks for it.
//
// Write-once is a conditional PUT (If-None-Match: *): the server refuses
// a second writer of a name with 412, which Save reports as
// backend.ErrExist — unless an earlier attempt of the same Save lost its
// answer and the stored file holds exactly the bytes sent (that attempt
// landed). A server that ignores the header would let a second Save
// replace the file.
//
// Object Lock: Create can make a bucket with Object Lock enabled; after
// SetRetention every file but locks is stored retained (GOVERNANCE or
// COMPLIANCE, a retain-until date, an explicit CRC32 checksum on that
// PUT), and RetainedUntil reads a file's retention for prune and check.
//
// It must never import the repository (backup/repo) or anything above
// backup; besides the standard library, backup/backend and internal/...
// it imports only the AWS SDK (aws-sdk-go-v2, smithy-go).
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Config says where a repository lives and how to reach it. Secrets are
// never in it: only the names of environment variables or files that
// hold them.
type Config struct {
	Endpoint string // scheme://host[:port], e.g. https://s3.example.net
	Bucket   string
	Prefix   string // folder inside the bucket, no leading or trailing slash; "" is the bucket's root
	Region   string // "" means the SDK's chain (AWS_REGION, profile), else us-east-1

	// PathStyle forces path-style (true) or virtual-hosted (false)
	// addressing; nil chooses path-style for every host outside
	// amazonaws.com, as self-hosted servers need.
	PathStyle *bool

	// AccessKeyIDEnv and SecretAccessKeyEnv name environment variables
	// holding static credentials (both or neither; SessionTokenEnv is
	// optional). CredentialsFile is an AWS shared-credentials file, read
	// with Profile ("" means default). With none of them set, the SDK's
	// usual chain applies: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
	// AWS_PROFILE, ~/.aws/credentials, web identity, SSO.
	// AccessKeyIDFile and SecretAccessKeyFile are files holding them
	// instead (trailing newline ignored); each key from a variable or a
	// file, not both.
	AccessKeyIDEnv      string
	AccessKeyIDFile     string
	SecretAccessKeyEnv  string
	SecretAccessKeyFile string
	SessionTokenEnv     string
	CredentialsFile     string
	Profile             string

	// EC2Metadata lets the credential chain ask the EC2 instance-metadata
	// service; off, nothing probes 169.254.169.254.
	EC2Metadata bool

	// MaxAttempts per request, the first included (0 means 10).
	MaxAttempts int
	// MaxBackoff between attempts (0 means 20 s).
	MaxBackoff time.Duration

	// ObjectLockBucket makes Create create a missing bucket with Object
	// Lock enabled (it cannot be enabled later on every server).
	ObjectLockBucket bool
}

// ParseURL parses a repository URL s3:http(s)://host[:port]/bucket[/prefix]
// (restic's form). The scheme may be left out (s3:host/bucket/prefix is
// https). Credentials in the URL are refused: they would be literal
// secrets.
func ParseURL(s string) (Config, error) {
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return Config{}, fmt.Errorf("%q is not an S3 repository URL (want s3:https://host/bucket/prefix)", s)
	}
	if !strings.Contains(rest, "://") {
		rest = "https://" + rest
	}
	u, err := url.Parse(rest)
	if err != nil {
		return Config{}, fmt.Errorf("S3 repository URL: %w", err)
	}
	if u.User != nil {
		return Config{}, errors.New("S3 repository URL: credentials in the URL are not accepted; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or the plan's *_env/*_file fields")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Config{}, fmt.Errorf("S3 repository URL %q: scheme %q, want http or https", s, u.Scheme)
	}
	if u.Host == "" {
		return Config{}, fmt.Errorf("S3 repository URL %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("S3 repository URL %q: a query or fragment is not accepted", s)
	}
	p := strings.Trim(path.Clean("/"+u.Path), "/")
	bucket, prefix, _ := strings.Cut(p, "/")
	if bucket == "" || bucket == "." {
		return Config{}, fmt.Errorf("S3 repository URL %q: no bucket (want s3:%s://%s/bucket/prefix)", s, u.Scheme, u.Host)
	}
	return Config{Endpoint: u.Scheme + "://" + u.Host, Bucket: bucket, Prefix: prefix}, nil
}

// WithLocation returns c's settings (credentials, region, addressing)
// with the endpoint, bucket and prefix of loc, as ParseURL returns them.
func (c Config) WithLocation(loc Config) Config {
	c.Endpoint, c.Bucket, c.Prefix = loc.Endpoint, loc.Bucket, loc.Prefix
	return c
}

// String is the repository URL, s3:endpoint/bucket[/prefix].
func (c Config) String() string {
	s := "s3:" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}

// Backend is a repository in an S3 bucket.
type Backend struct {
	cfg    Config
	client *s3.Client
	where  string // for messages: the repository URL
	ret    retention
}

var _ backend.Backend = (*Backend)(nil)

// pathStyle decides the addressing for an endpoint.
func (c Config) pathStyle() bool {
	if c.PathStyle != nil {
		return *c.PathStyle
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return true
	}
	h := u.Hostname()
	return !(h == "amazonaws.com" || strings.HasSuffix(h, ".amazonaws.com"))
}

// secret returns the value of a variable or the content of a file.
func secret(what, env, file string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("S3 credentials: the %s comes from $%s or from %s, not both", what, env, file)
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("S3 credentials: $%s (the %s) is unset or empty", env, what)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("S3 credentials: the %s: %w", what, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("S3 credentials: %s (the %s) is empty", file, what)
		}
		return v, nil
	}
	return "", nil
}

// credentials returns the static provider Config asks for, or nil for
// the SDK's chain.
func (c Config) credentials() (aws.CredentialsProvider, error) {
	id, err := secret("access key ID", c.AccessKeyIDEnv, c.AccessKeyIDFile)
	if err != nil {
		return nil, err
	}
	key, err := secret("secret access key", c.SecretAccessKeyEnv, c.SecretAccessKeyFile)
	if err != nil {
		return nil, err
	}
	switch {
	case id == "" && key == "":
		if c.SessionTokenEnv != "" {
			return nil, errors.New("S3 credentials: a session token without an access key")
		}
		return nil, nil
	case id == "" || key == "":
		return nil, errors.New("S3 credentials: give both the access key ID and the secret access key")
	case c.CredentialsFile != "":
		return nil, errors.New("S3 credentials: give the access key or a credentials file, not both")
	}
	token := ""
	if c.SessionTokenEnv != "" {
		token = os.Getenv(c.SessionTokenEnv)
	}
	return credentials.NewStaticCredentialsProvider(id, key, token), nil
}

// attempts is MaxAttempts or its default.
func (c Config) attempts() int {
	if c.MaxAttempts <= 0 {
		return 10
	}
	return c.MaxAttempts
}

// newClient builds the S3 client with holiday's settings.
func newClient(ctx context.Context, c Config) (*s3.Client, error) {
	if _, err := url.Parse(c.Endpoint); err != nil || c.Endpoint == "" || c.Bucket == "" {
		return nil, fmt.Errorf("S3 repository: endpoint %q and bucket %q are required", c.Endpoint, c.Bucket)
	}
	attempts, backoff := c.attempts(), c.MaxBackoff
	if backoff <= 0 {
		backoff = 20 * time.Second
	}
	imdsState := imds.ClientDisabled
	if c.EC2Metadata {
		imdsState = imds.ClientEnabled
	}
	opts := []func(*config.LoadOptions) error{
		config.WithEC2IMDSClientEnableState(imdsState),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
				// the client-side retry quota gives up after a burst of
				// failures: exactly when a busy server needs patience
				o.RateLimiter = ratelimit.None
				// AWS answers two conditional writes of one key at once
				// with 409; the second try gets 412 or succeeds
				o.Retryables = append(append([]retry.IsErrorRetryable{}, o.Retryables...),
					retry.RetryableErrorCode{Codes: map[string]struct{}{"ConditionalRequestConflict": {}}})
			})
		}),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.CredentialsFile != "" {
		if _, err := os.Stat(c.CredentialsFile); err != nil {
			return nil, fmt.Errorf("S3 credentials file: %w", err)
		}
		opts = append(opts, config.WithSharedCredentialsFiles([]string{c.CredentialsFile}))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	prov, err := c.credentials()
	if err != nil {
		return nil, err
	}
	if prov != nil {
		opts = append(opts, config.WithCredentialsProvider(prov))
	}
	acfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("S3 configuration: %w", err)
	}
	if acfg.Region == "" {
		acfg.Region = "us-east-1"
	}
	// fail now, in words, rather than inside the first request
	if acfg.Credentials == nil {
		return nil, fmt.Errorf("%w: no credentials found for %s", ErrCredentials, c)
	}
	if _, err := acfg.Credentials.Retrieve(ctx); err != nil {
		return nil, &opError{op: "open", where: c.String(), kind: ErrCredentials, err: err,
			why: "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the plan's repository.s3 fields"}
	}
	return s3.NewFromConfig(acfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(c.Endpoint)
		o.UsePathStyle = c.pathStyle()
	}), nil
}

// Open returns a backend for the repository cfg names. It lists the
// prefix once, so wrong credentials, a missing bucket or an unreachable
// server are reported here, in an operator's words.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.probe(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Create returns a backend for a new repository: like Open, but a missing
// bucket is created first (as restic's init does), and a prefix that
// already holds objects is refused (as a non-empty directory is).
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	used, err := b.probe(ctx)
	if errors.Is(err, ErrNoBucket) {
		in := &s3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)}
		if r := b.client.Options().Region; r != "us-east-1" {
			// AWS wants the region named for any other
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
		}
		var cerr error
		if cfg.ObjectLockBucket {
			cerr = b.createLockedBucket(ctx, in)
		} else {
			_, cerr = b.client.CreateBucket(ctx, in)
		}
		var owned *types.BucketAlreadyOwnedByYou
		if cerr != nil && !errors.As(cerr, &owned) {
			return nil, b.wrap("create bucket "+cfg.Bucket, cerr)
		}
		used, err = b.probe(ctx)
	}
	if err != nil {
		return nil, err
	}
	if used {
		return nil, fmt.Errorf("create repository %s: the prefix already holds objects; choose an empty prefix", b.where)
	}
	return b, nil
}

func newBackend(ctx context.Context, cfg Config) (*Backend, error) {
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Backend{cfg: cfg, client: client, where: cfg.String()}, nil
}

// openAttempts bounds the tries of Open's first request.
const openAttempts = 3

// probe lists at most one key under the prefix and reports whether there
// was one. It is a GET, whose error body (unlike a HEAD's) says which of
// credentials, bucket or permission is wrong.
func (b *Backend) probe(ctx context.Context) (bool, error) {
	out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(b.key("")), MaxKeys: aws.Int32(1),
	}, func(o *s3.Options) {
		// a wrong endpoint should fail in seconds; the work after it
		// is patient
		o.RetryMaxAttempts = min(b.cfg.attempts(), openAttempts)
	})
	if err != nil {
		return false, b.wrap("open", err)
	}
	return len(out.Contents) > 0, nil
}

// Location is the repository URL, s3:endpoint/bucket/prefix.
func (b *Backend) Location() string { return b.where }

// Client is the underlying S3 client (tests and maintenance tools).
func (b *Backend) Client() *s3.Client { return b.client }

// Bucket is the bucket's name.
func (b *Backend) Bucket() string { return b.cfg.Bucket }

// key is the object key of a name inside the prefix.
func (b *Backend) key(name string) string {
	if b.cfg.Prefix == "" {
		return name
	}
	return b.cfg.Prefix + "/" + name
}

// objectKey is where h lives: restic's default layout.
func (b *Backend) objectKey(h backend.Handle) string {
	switch h.Type {
	case backend.ConfigFile:
		return b.key("config")
	case backend.PackFile:
		return b.key("data/" + h.Name[:2] + "/" + h.Name)
	}
	return b.key(h.Type.Dir() + "/" + h.Name)
}

// readSeeker hides Close (and anything else) of the caller's reader: the
// HTTP client closes a request body that has a Close method, and Save
// must not close rd.
type readSeeker struct{ io.ReadSeeker }

// Save implements backend.Backend: one conditional PUT of the whole body.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	size, err := rd.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = rd.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("save %v: rewind: %w", h, err)
	}
	var lost atomic.Bool
	in := &s3.PutObjectInput{
		Bucket:        aws.String(b.cfg.Bucket),
		Key:           aws.String(b.objectKey(h)),
		Body:          readSeeker{rd},
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
		IfNoneMatch:   aws.String("*"),
	}
	if mode, until := b.retainFor(h); mode != "" {
		// S3 wants an integrity checksum on a PUT with retention: one
		// explicit here, where the defaults send none
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = mode, aws.Time(until)
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	}
	_, err = b.client.PutObject(ctx, in, func(o *s3.Options) { o.APIOptions = append(o.APIOptions, b.lostAnswers(h, &lost)) })
	if err == nil {
		return nil
	}
	if lost.Load() && (errors.Is(err, errTaken) || errors.Is(classify(err), backend.ErrExist)) {
		// An attempt whose answer never came may have stored the file
		// before a retry found the name taken. If what is stored is
		// what we sent, that attempt was ours (or an identical write):
		// saved.
		same, cerr := b.holds(ctx, h, rd, size)
		if cerr != nil {
			return fmt.Errorf("save %v: %w (comparing it with what was sent failed: %v)", h, backend.ErrExist, cerr)
		}
		if same {
			return nil
		}
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	return b.wrap(fmt.Sprintf("save %v", h), err)
}

// errTaken ends a Save's retries: an earlier attempt lost its answer and
// the name now exists.
var errTaken = errors.New("the name was taken after an attempt whose answer was lost")

// lostAnswers runs around each attempt of a Save's PUT (after the
// retryer). When an attempt ends without a response (the connection
// dropped after the request may have reached the server) it sets lost;
// the attempts after that look first whether the file is there, rather
// than upload it again into a 412 (which servers often send before
// reading the body, then reset the connection: a retry storm).
func (b *Backend) lostAnswers(h backend.Handle, lost *atomic.Bool) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("holidayLostAnswers",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if lost.Load() {
					if _, err := b.Stat(ctx, h); err == nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, errTaken
					}
				}
				out, md, err := next.HandleFinalize(ctx, in)
				var se *smithyhttp.RequestSendError
				if errors.As(err, &se) {
					lost.Store(true)
				}
				return out, md, err
			}), middleware.After)
	}
}

// holds reports whether the stored file h has exactly the size bytes of
// rd.
func (b *Backend) holds(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) (bool, error) {
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	stored, err := b.Load(ctx, h, 0, 0)
	if err != nil {
		return false, err
	}
	defer stored.Close()
	a, c := make([]byte, 64<<10), make([]byte, 64<<10)
	var n int64
	for {
		k, rerr := io.ReadFull(rd, a)
		if k > 0 {
			if _, err := io.ReadFull(stored, c[:k]); err != nil {
				return false, nil // stored is shorter
			}
			if !bytes.Equal(a[:k], c[:k]) {
				return false, nil
			}
			n += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return false, rerr
		}
	}
	if k, _ := stored.Read(c[:1]); k > 0 {
		return false, nil // stored is longer
	}
	return n == size, nil
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	if length < 0 || offset < 0 {
		return nil, fmt.Errorf("load %v: invalid range %d+%d", h, offset, length)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.objectKey(h))}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+int64(length)-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(ctx, in)
	if isCode(err, "InvalidRange") || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
		// the range starts at or past the end: fine only for "from the
		// end to the end" (offset == size, length 0)
		fi, serr := b.Stat(ctx, h)
		if serr != nil {
			return nil, serr
		}
		if length == 0 && offset == fi.Size {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, fmt.Errorf("load %v: range %d+%d beyond the file's %d bytes: %w", h, offset, length, fi.Size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, b.wrap(fmt.Sprintf("load %v", h), err)
	}
	n := aws.ToInt64(out.ContentLength)
	if length > 0 && n < int64(length) {
		out.Body.Close()
		return nil, fmt.Errorf("load %v: range %d+%d beyond the end of the file (%d bytes there): %w", h, offset, length, n, io.ErrUnexpectedEOF)
	}
	body := &resumingReader{ctx: ctx, b: b, h: h, etag: aws.ToString(out.ETag), body: out.Body, off: offset, end: offset + n}
	return backend.LimitedReadCloser(body, n), nil
}

// bodyResumes is how often a Load's body may break off and be resumed.
const bodyResumes = 5

// resumingReader reads a GET's body and, when the connection breaks off
// in the middle (which the SDK's retryer never sees: it ends with the
// headers), asks again for the rest, from where it stopped, for the same
// version of the object (If-Match on its ETag).
type resumingReader struct {
	ctx      context.Context
	b        *Backend
	h        backend.Handle
	etag     string
	body     io.ReadCloser
	off, end int64 // next byte to read, end of the range (exclusive)
	resumed  int
}

func (r *resumingReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err == nil || err == io.EOF || r.off >= r.end || r.resumed >= bodyResumes || r.ctx.Err() != nil {
		return n, err
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(r.b.cfg.Bucket), Key: aws.String(r.b.objectKey(r.h)),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", r.off, r.end-1)),
	}
	if r.etag != "" {
		in.IfMatch = aws.String(r.etag)
	}
	out, gerr := r.b.client.GetObject(r.ctx, in)
	if gerr != nil {
		return n, fmt.Errorf("load %v: %w (resuming at byte %d failed: %v)", r.h, err, r.off, detail(gerr))
	}
	r.body.Close()
	r.body, r.resumed = out.Body, r.resumed+1
	return n, nil
}

func (r *resumingReader) Close() error { return r.body.Close() }

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.objectKey(h))})
	if err != nil {
		return backend.FileInfo{}, b.wrap(fmt.Sprintf("stat %v", h), err)
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: aws.ToInt64(out.ContentLength)}, nil
}

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.ConfigFile {
		fi, err := b.Stat(ctx, backend.Handle{Type: t})
		if backend.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	dir := b.key(t.Dir()) + "/"
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(dir)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.wrap(fmt.Sprintf("list %v", t), err)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), dir)
			name := rel
			if t == backend.PackFile {
				// data/xx/name, with xx the name's first two characters
				sub, n, ok := strings.Cut(rel, "/")
				if !ok || len(n) < 2 || sub != n[:2] {
					continue
				}
				name = n
			}
			if (backend.Handle{Type: t, Name: name}).Valid() != nil {
				continue
			}
			if err := fn(backend.FileInfo{Name: name, Size: aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove implements backend.Backend. S3 deletes a missing key without
// complaint, so a HEAD first tells a missing file apart.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if _, err := b.Stat(ctx, h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.objectKey(h))})
	if err != nil {
		return b.wrap(fmt.Sprintf("remove %v", h), err)
	}
	return nil
}
