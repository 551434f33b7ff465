package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"
)

// flagReader reads a command's flag values by name, collecting the errors
// (a flag not defined, or defined with another type) for Err, so a command
// reads all its flags first and checks once.
type flagReader struct {
	cmd  *cobra.Command
	errs []error
}

// readFlag returns the value get (one of the flag set's typed getters)
// gives for name, noting its error.
func readFlag[T any](r *flagReader, get func(string) (T, error), name string) T {
	v, err := get(name)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return v
}

// String returns a string flag.
func (r *flagReader) String(name string) string { return readFlag(r, r.cmd.Flags().GetString, name) }

// StringSlice returns a string slice flag.
func (r *flagReader) StringSlice(name string) []string {
	return readFlag(r, r.cmd.Flags().GetStringSlice, name)
}

// Bool returns a bool flag.
func (r *flagReader) Bool(name string) bool { return readFlag(r, r.cmd.Flags().GetBool, name) }

// Int returns an int flag.
func (r *flagReader) Int(name string) int { return readFlag(r, r.cmd.Flags().GetInt, name) }

// Int32 returns an int32 flag.
func (r *flagReader) Int32(name string) int32 { return readFlag(r, r.cmd.Flags().GetInt32, name) }

// Int64 returns an int64 flag.
func (r *flagReader) Int64(name string) int64 { return readFlag(r, r.cmd.Flags().GetInt64, name) }

// Uint64 returns a uint64 flag.
func (r *flagReader) Uint64(name string) uint64 { return readFlag(r, r.cmd.Flags().GetUint64, name) }

// Float64 returns a float64 flag.
func (r *flagReader) Float64(name string) float64 {
	return readFlag(r, r.cmd.Flags().GetFloat64, name)
}

// Duration returns a duration flag.
func (r *flagReader) Duration(name string) time.Duration {
	return readFlag(r, r.cmd.Flags().GetDuration, name)
}

// Err returns the errors of every read so far, joined; nil when all went
// well.
func (r *flagReader) Err() error { return errors.Join(r.errs...) }
