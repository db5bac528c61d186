// Package archtest holds the layering test: packages only import downward
// (cmd → restore → actions → plans, backup → internal), as DESIGN §3 says.
// It has no non-test code.
package archtest
