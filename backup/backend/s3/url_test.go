package s3

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in                       string
		endpoint, bucket, prefix string
		err                      string
	}{
		{in: "s3:http://10.0.0.1:7070/bkt/some/prefix", endpoint: "http://10.0.0.1:7070", bucket: "bkt", prefix: "some/prefix"},
		{in: "s3:https://s3.example.net/bkt", endpoint: "https://s3.example.net", bucket: "bkt"},
		{in: "s3:https://s3.example.net/bkt/", endpoint: "https://s3.example.net", bucket: "bkt"},
		{in: "s3:s3.amazonaws.com/bkt/p", endpoint: "https://s3.amazonaws.com", bucket: "bkt", prefix: "p"},
		{in: "s3:https://[fd00::1]:9000/bkt/a//b/", endpoint: "https://[fd00::1]:9000", bucket: "bkt", prefix: "a/b"},
		{in: "/srv/repo", err: "not an S3 repository URL"},
		{in: "s3:https://host/", err: "no bucket"},
		{in: "s3:https://AK:SK@host/bkt", err: "credentials in the URL"},
		{in: "s3:ftp://host/bkt", err: `scheme "ftp"`},
		{in: "s3:https:///bkt", err: "no host"},
		{in: "s3:https://host/bkt?region=x", err: "query"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				if err != nil && strings.Contains(err.Error(), "SK") && strings.Contains(tc.in, "SK@") {
					t.Errorf("the error echoes the secret: %v", err)
				}
				return
			}
			if err != nil || c.Endpoint != tc.endpoint || c.Bucket != tc.bucket || c.Prefix != tc.prefix {
				t.Errorf("got %+v, %v", c, err)
			}
		})
	}
}

func TestPathStyle(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		endpoint string
		force    *bool
		want     bool
	}{
		{"http://10.213.0.1:7070", nil, true},
		{"https://minio.example.net", nil, true},
		{"https://s3.amazonaws.com", nil, false},
		{"https://s3.eu-west-1.amazonaws.com", nil, false},
		{"https://s3.amazonaws.com", &yes, true},
		{"https://minio.example.net", &no, false},
	} {
		if got := (Config{Endpoint: tc.endpoint, PathStyle: tc.force}).pathStyle(); got != tc.want {
			t.Errorf("pathStyle(%s, %v) = %v", tc.endpoint, tc.force, got)
		}
	}
}

func TestCredentialSources(t *testing.T) {
	dir := t.TempDir()
	idFile, keyFile, empty := filepath.Join(dir, "id"), filepath.Join(dir, "key"), filepath.Join(dir, "empty")
	for f, s := range map[string]string{idFile: "AKID\n", keyFile: "SECRET\n", empty: "\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("T_ID", "AKID")
	t.Setenv("T_KEY", "SECRET")
	t.Setenv("T_EMPTY", "")
	for _, tc := range []struct {
		name string
		c    Config
		err  string // "" ok with AKID/SECRET; "chain" ok with no static provider
	}{
		{"none: the SDK's chain", Config{}, "chain"},
		{"env", Config{AccessKeyIDEnv: "T_ID", SecretAccessKeyEnv: "T_KEY"}, ""},
		{"files", Config{AccessKeyIDFile: idFile, SecretAccessKeyFile: keyFile}, ""},
		{"mixed", Config{AccessKeyIDEnv: "T_ID", SecretAccessKeyFile: keyFile}, ""},
		{"empty variable", Config{AccessKeyIDEnv: "T_ID", SecretAccessKeyEnv: "T_EMPTY"}, "$T_EMPTY (the secret access key) is unset or empty"},
		{"empty file", Config{AccessKeyIDFile: empty, SecretAccessKeyEnv: "T_KEY"}, "is empty"},
		{"missing file", Config{AccessKeyIDEnv: "T_ID", SecretAccessKeyFile: filepath.Join(dir, "nope")}, "no such file"},
		{"id only", Config{AccessKeyIDEnv: "T_ID"}, "give both"},
		{"both sources", Config{AccessKeyIDEnv: "T_ID", AccessKeyIDFile: idFile, SecretAccessKeyEnv: "T_KEY"}, "not both"},
		{"with a credentials file", Config{AccessKeyIDEnv: "T_ID", SecretAccessKeyEnv: "T_KEY", CredentialsFile: idFile}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.c.credentials()
			switch {
			case tc.err == "chain":
				if err != nil || p != nil {
					t.Errorf("got %v, %v; want the SDK's chain", p, err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				if err != nil && strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error echoes a secret: %v", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				v, err := p.Retrieve(t.Context())
				if err != nil || v.AccessKeyID != "AKID" || v.SecretAccessKey != "SECRET" {
					t.Errorf("got %q/%q, %v", v.AccessKeyID, v.SecretAccessKey, err)
				}
			}
		})
	}
}
