// Package interop holds the tests that exchange CMS structures and AS2 messages with
// implementations nobody on this project wrote: the OpenSSL 3 command line, BouncyCastle
// (through a small Java program in bc/) and the libas2 npm package (through a Node harness in
// libas2/). The programs are found or installed by scripts/testdeps.sh; outside CI a missing
// one makes its tests skip, and in CI (CI=true) it makes them fail.
package interop
