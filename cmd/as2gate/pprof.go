package main

import (
	"net/http"
	"net/http/pprof"
	"os"
)

// pprofEnv names the environment variable that, set to 1, serves the Go runtime's profiles
// under /debug/pprof/ on the admin listener. Off by default: profiles reveal internals and
// cost CPU while taken, so they are for a benchmark or a diagnosis, never left on.
const pprofEnv = "AS2GATE_PPROF"

// withPprof adds the profile endpoints in front of h when pprofEnv is set to 1.
func withPprof(h http.Handler) http.Handler {
	if os.Getenv(pprofEnv) != "1" {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
