//go:build tools

// Package tools pins promtool, which checks the alert rules the operator generates.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
