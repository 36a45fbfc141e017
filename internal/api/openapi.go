package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of every route in API.routes; a test holds the two
// together.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI serves the document without authentication: it describes the API, not its
// data, and clients read it before they hold a token.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
