// Package netpolicy decides which addresses the gateway may connect to on a partner's
// word. A Receipt-Delivery-Option URL comes from the sender of a message, so an asynchronous
// MDN must not be a way to make the gateway POST into its own network: private, loopback,
// link-local and unspecified addresses are refused unless the operator allows them.
package netpolicy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// Blocked reports whether ip is an address an outside party must not make us reach.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		cgnat.Contains(ip)
}

// cgnat is the shared address space of RFC 6598, private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// AddressError reports a URL whose host is, or resolves to, a blocked address.
type AddressError struct {
	URL  string
	Addr netip.Addr
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("netpolicy: %s resolves to %s, a private, loopback or link-local address; set allow_private_mdn_urls: true to allow it", e.URL, e.Addr)
}

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL checks that raw is an http or https URL whose host resolves only to allowed
// addresses. With allowPrivate every address is allowed, but the URL must still parse.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("netpolicy: %q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("netpolicy: %q is not an http or https URL", raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("netpolicy: %q has no host", raw)
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if Blocked(ip) {
			return &AddressError{URL: raw, Addr: ip}
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("netpolicy: resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if Blocked(a) {
			return &AddressError{URL: raw, Addr: a}
		}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses blocked addresses at connect time,
// after resolution, so that a name that resolves differently later cannot get around
// CheckURL.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netpolicy: unexpected address %q: %w", address, err)
	}
	if Blocked(ap.Addr()) {
		return &AddressError{URL: network + "://" + address, Addr: ap.Addr()}
	}
	return nil
}

// Dialer returns a dialer that applies Control unless allowPrivate.
func Dialer(base *net.Dialer, allowPrivate bool) *net.Dialer {
	d := *base
	if !allowPrivate {
		d.Control = Control
	}
	return &d
}
