// Package plans holds holiday's plan: the YAML schema an operator writes
// (and the Ansible-style INI inventories a plan may name), its strict
// decoding with FILE:LINE:COL errors that name the field path, the
// validation and lint rules that refuse a dangerous plan before any host is
// touched, and the resolution of defaults and groups into per-host work.
//
// Every command loads its plan through [Load]; `holiday plan validate` is
// that same path with nothing else after it.
//
// plans does no I/O beyond reading the plan and the files it names. It may
// import holiday's internal/... helpers only — never actions, backup,
// restore or cmd (a layering test in internal/archtest enforces it), so
// every other layer can depend on it.
package plans
