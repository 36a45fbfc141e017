//go:build !linux

package payload

func createTemp(dir string) (*tempFile, error) { return createNamedTemp(dir) }
