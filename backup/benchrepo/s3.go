package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Place is where the repositories go with -s3: a bucket (created by
// the tools' init) and a folder in it, reached with the credentials in
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, path-style.
type s3Place struct {
	url, bucket, prefix string
	client              *s3.Client
}

func newS3Place(s string) (*s3Place, error) {
	u, err := url.Parse(strings.TrimPrefix(s, "s3:"))
	if err != nil || !strings.HasPrefix(s, "s3:") || u.Host == "" {
		return nil, fmt.Errorf("-s3 %q: want s3:http(s)://host[:port]/bucket[/prefix]", s)
	}
	bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	if bucket == "" {
		return nil, fmt.Errorf("-s3 %q: no bucket", s)
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return nil, fmt.Errorf("-s3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String(u.Scheme + "://" + u.Host), Region: region, UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(id, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return &s3Place{url: strings.TrimSuffix(s, "/"), bucket: bucket, prefix: prefix, client: c}, nil
}

// key turns a repository URL below the place into its key prefix.
func (p *s3Place) key(repo string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(repo, p.url), "/")
	if p.prefix != "" {
		rel = p.prefix + "/" + rel
	}
	return strings.TrimSuffix(rel, "/") + "/"
}

// walk calls fn for every object under repo.
func (p *s3Place) walk(repo string, fn func(key string, size int64)) error {
	pg := s3.NewListObjectsV2Paginator(p.client, &s3.ListObjectsV2Input{Bucket: aws.String(p.bucket), Prefix: aws.String(p.key(repo))})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			fn(aws.ToString(o.Key), aws.ToInt64(o.Size))
		}
	}
	return nil
}

// size is the bytes stored under repo (object sizes, not disk blocks).
func (p *s3Place) size(repo string) int64 {
	var n int64
	_ = p.walk(repo, func(_ string, s int64) { n += s })
	return n
}

// remove deletes everything under repo.
func (p *s3Place) remove(repo string) {
	var keys []string
	_ = p.walk(repo, func(k string, _ int64) { keys = append(keys, k) })
	for _, k := range keys {
		_, _ = p.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(k)})
	}
}

// close removes the bucket when nothing is left in it (the tools' init
// created it).
func (p *s3Place) close() {
	if p.prefix == "" {
		_, _ = p.client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(p.bucket)})
	}
}
