package loadgen

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// Kind is why one tunnel failed. Each failed tunnel counts once, under the first thing that
// went wrong with it.
type Kind uint8

const (
	// Refused: the TCP connect was answered with a reset. Nothing listens at the address,
	// or the bridge sheds connections (ptreactor does at its tunnel limit).
	Refused Kind = iota
	// Unreachable: no route to the address (ENETUNREACH, EHOSTUNREACH).
	Unreachable
	// ConnectTimeout: the TCP connect did not complete within the timeout (SYNs dropped).
	ConnectTimeout
	// Silent: TCP connected and the handshake was sent, but not one byte came back within
	// the timeout and the bridge kept the connection open. A wrong cert= looks exactly like
	// this: an obfs4 bridge that cannot verify a handshake says nothing and, to hide from
	// probers, holds the connection 30 to 90 seconds before it closes.
	Silent
	// ClosedUnanswered: the bridge closed the connection (FIN) without having sent one byte
	// of reply. A wrong cert= with a timeout longer than the bridge's stall ends this way;
	// so does a server that is not obfs4 and hangs up on what it cannot parse.
	ClosedUnanswered
	// HandshakeTimeout: the bridge began to answer but the reply was not complete within
	// the timeout.
	HandshakeTimeout
	// BadReply: the bridge answered with bytes that are not a valid obfs4 reply (no mark
	// within the maximum handshake length, a wrong ntor AUTH), or a frame that does not
	// decrypt.
	BadReply
	// Reset: the bridge reset the connection (ECONNRESET, EPIPE) after it was established,
	// during the handshake or while the tunnel was held.
	Reset
	// Closed: the bridge closed (FIN) a tunnel after starting to answer: mid-reply or
	// while the tunnel was held.
	Closed
	// TorLinkTLS: with --tor-link, the TLS handshake with the bridge's tor failed.
	TorLinkTLS
	// TorLinkCells: with --tor-link, tor's answer was not VERSIONS (with a version in
	// common) followed by CERTS, AUTH_CHALLENGE and NETINFO.
	TorLinkCells
	// TorLinkTimeout: with --tor-link, the link handshake did not finish within the timeout.
	TorLinkTimeout
	// Local: this process could not open the connection: out of descriptors or local
	// ports (EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS), or another local failure.
	Local

	numKinds
)

var kindNames = [numKinds]string{
	Refused:          "refused",
	Unreachable:      "unreachable",
	ConnectTimeout:   "connect-timeout",
	Silent:           "silent",
	ClosedUnanswered: "closed-unanswered",
	HandshakeTimeout: "handshake-timeout",
	BadReply:         "bad-reply",
	Reset:            "reset",
	Closed:           "closed",
	TorLinkTLS:       "tor-link-tls",
	TorLinkCells:     "tor-link-cells",
	TorLinkTimeout:   "tor-link-timeout",
	Local:            "local",
}

// String is the kind's name in the report and in the JSON figures (their Variant).
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// dialKind classifies a failed TCP connect.
func dialKind(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return Unreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ConnectTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return Reset
	default:
		return Local
	}
}

// closeKind classifies a connection the bridge ended: err is what gnet reports on close.
// answered says whether the bridge had sent anything.
func closeKind(err error, answered bool) Kind {
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case !answered:
		return ClosedUnanswered
	default:
		return Closed
	}
}
