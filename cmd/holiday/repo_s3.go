package main

import (
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/plans"
)

// s3Settings turns a plan's repository.s3 into the S3 backend's settings
// (where the credentials come from, region, addressing); nil means the
// SDK's usual chain.
func s3Settings(s *plans.RepositoryS3) s3be.Config {
	if s == nil {
		return s3be.Config{}
	}
	return s3be.Config{
		AccessKeyIDEnv: s.AccessKeyIDEnv, AccessKeyIDFile: s.AccessKeyIDFile,
		SecretAccessKeyEnv: s.SecretAccessKeyEnv, SecretAccessKeyFile: s.SecretAccessKeyFile,
		CredentialsFile: s.CredentialsFile, Profile: s.Profile,
		Region: s.Region, PathStyle: s.PathStyle, EC2Metadata: s.EC2Metadata,
	}
}
