package loadgen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Tor link protocol cells, as much of them as a client's side of the link handshake needs.
// A cell is a circuit ID (2 bytes before a link protocol version is agreed and under
// version 3, 4 bytes from version 4 on), a command byte and either a fixed 509-byte
// payload or, for VERSIONS and commands from 128 up, a 2-byte length and that many bytes.

// Cell commands.
const (
	cmdPadding       = 0
	cmdVersions      = 7
	cmdNetinfo       = 8
	cmdVPadding      = 128
	cmdCerts         = 129
	cmdAuthChallenge = 130
)

const (
	cellPayloadLength = 509
	// maxVarCellLength bounds a variable-length cell that ptbench accepts; a CERTS cell of
	// today's tor is about 1.5 KiB.
	maxVarCellLength = 16 << 10
)

// linkVersions are the link protocol versions ptbench offers, those of a current tor.
var linkVersions = [...]uint16{3, 4, 5}

// appendVersionsCell appends the client's VERSIONS cell: circuit ID 0 in 2 bytes, command
// 7, the payload length, the versions.
func appendVersionsCell(dst []byte) []byte {
	dst = append(dst, 0, 0, cmdVersions)
	dst = binary.BigEndian.AppendUint16(dst, uint16(2*len(linkVersions)))
	for _, v := range linkVersions {
		dst = binary.BigEndian.AppendUint16(dst, v)
	}
	return dst
}

// parseVersionsCell reads the VERSIONS cell at the start of b, which always has a 2-byte
// circuit ID, and returns the highest version both sides offer. n is 0 while b holds only
// part of the cell.
func parseVersionsCell(b []byte) (version uint16, n int, err error) {
	const header = 2 + 1 + 2
	if len(b) < 3 {
		return 0, 0, nil
	}
	if b[2] != cmdVersions {
		return 0, 0, fmt.Errorf("the first cell is command %d, not VERSIONS (7): not a tor link", b[2])
	}
	if len(b) < header {
		return 0, 0, nil
	}
	length := int(binary.BigEndian.Uint16(b[3:5]))
	if length%2 != 0 || length > maxVarCellLength {
		return 0, 0, fmt.Errorf("VERSIONS cell of %d bytes", length)
	}
	if len(b) < header+length {
		return 0, 0, nil
	}
	for p := b[header : header+length]; len(p) >= 2; p = p[2:] {
		v := binary.BigEndian.Uint16(p)
		for _, ours := range linkVersions {
			if v == ours && v > version {
				version = v
			}
		}
	}
	if version == 0 {
		return 0, 0, fmt.Errorf("VERSIONS cell offers no link protocol version in common with %v", linkVersions)
	}
	return version, header + length, nil
}

// circIDLength is the width of a circuit ID under link protocol version.
func circIDLength(version uint16) int {
	if version < 4 {
		return 2
	}
	return 4
}

// parseCell reads the cell at the start of b under link protocol version. n is 0 while b
// holds only part of it.
func parseCell(b []byte, version uint16) (cmd byte, payload []byte, n int, err error) {
	w := circIDLength(version)
	if len(b) < w+1 {
		return 0, nil, 0, nil
	}
	cmd = b[w]
	if cmd == cmdVersions || cmd >= 128 {
		if len(b) < w+3 {
			return 0, nil, 0, nil
		}
		length := int(binary.BigEndian.Uint16(b[w+1:]))
		if length > maxVarCellLength {
			return 0, nil, 0, fmt.Errorf("cell %d of %d bytes", cmd, length)
		}
		if len(b) < w+3+length {
			return 0, nil, 0, nil
		}
		return cmd, b[w+3 : w+3+length], w + 3 + length, nil
	}
	if len(b) < w+1+cellPayloadLength {
		return 0, nil, 0, nil
	}
	return cmd, b[w+1 : w+1+cellPayloadLength], w + 1 + cellPayloadLength, nil
}

// appendNetinfoCell appends a client's NETINFO: time 0 (clients do not send their clock),
// the address of the relay as seen from here, and no addresses of our own.
func appendNetinfoCell(dst []byte, version uint16, other netip.Addr) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, circIDLength(version))...)
	dst = append(dst, cmdNetinfo, 0, 0, 0, 0)
	switch {
	case other.Is4():
		a := other.As4()
		dst = append(dst, 4, 4)
		dst = append(dst, a[:]...)
	case other.Is6():
		a := other.As16()
		dst = append(dst, 6, 16)
		dst = append(dst, a[:]...)
	default:
		dst = append(dst, 4, 4, 0, 0, 0, 0)
	}
	dst = append(dst, 0) // NMYADDR
	end := start + circIDLength(version) + 1 + cellPayloadLength
	return append(dst, make([]byte, end-len(dst))...)
}
