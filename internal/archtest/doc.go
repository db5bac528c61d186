// Package archtest holds the repository-wide rules tests check: packages
// only import downward (cmd → restore → actions → plans, backup →
// internal), as DESIGN §3 says; and every test skip goes through
// internal/testenv. It has no non-test code.
package archtest
