package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pexnet/pex"
)

// Frames: every message on a connection, the handshake's too, is a uint32
// big-endian length followed by that many bytes.

var errFrameTooLarge = errors.New("frame too large")

// writeFrame writes msg as one frame, in one Write call.
func writeFrame(w io.Writer, msg []byte) error {
	buf := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(buf, uint32(len(msg)))
	copy(buf[4:], msg)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame, refusing one longer than limit before
// allocating anything for it.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, limit)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

const (
	handshakeTimeout = 5 * time.Second
	challengeSize    = 32
	maxListenAddr    = 255 // bytes of the announced host:port
)

// signedPrefix keeps a handshake signature from being valid as anything
// else signed with the same key.
var signedPrefix = []byte("pex tcpnode handshake v1\x00")

var (
	errBadHandshake = errors.New("bad handshake message")
	errBadSignature = errors.New("handshake signature does not verify")
)

// handshake proves each side's key to the other. Both sides run the same
// steps at the same time:
//
//  1. send a fresh random challenge;
//  2. read the other side's challenge;
//  3. send our public key, our listen address (host:port), and our
//     signature over the other side's challenge and that address;
//  4. read the same from the other side, and verify its signature over
//     our challenge.
//
// It returns the peer's NodeID, derived from the key the peer proved it
// holds, and the listen address it announced. It does not encrypt, and
// nothing binds the frames that follow to the key: an attacker on the path
// can relay the handshake and then read or change the traffic. A
// production transport uses an authenticated, encrypted channel
// (CometBFT's SecretConnection, TLS, Noise) and derives the NodeID from
// the key that channel proved.
func handshake(nc net.Conn, key ed25519.PrivateKey, listen string) (pex.NodeID, string, error) {
	nc.SetDeadline(time.Now().Add(handshakeTimeout)) // on a closed conn, the write fails
	defer nc.SetDeadline(time.Time{})

	ours := make([]byte, challengeSize)
	_, _ = rand.Read(ours) // crypto/rand.Read never fails
	if err := writeFrame(nc, ours); err != nil {
		return "", "", err
	}
	theirs, err := readFrame(nc, challengeSize)
	if err != nil {
		return "", "", err
	}
	if len(theirs) != challengeSize {
		return "", "", fmt.Errorf("%w: challenge of %d bytes", errBadHandshake, len(theirs))
	}

	// Our proof: public key (32 bytes), signature (64), listen address.
	pub := key.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(key, signedBytes(theirs, listen))
	proof := bytes.Join([][]byte{pub, sig, []byte(listen)}, nil)
	if err := writeFrame(nc, proof); err != nil {
		return "", "", err
	}
	reply, err := readFrame(nc, ed25519.PublicKeySize+ed25519.SignatureSize+maxListenAddr)
	if err != nil {
		return "", "", err
	}
	if len(reply) < ed25519.PublicKeySize+ed25519.SignatureSize {
		return "", "", fmt.Errorf("%w: proof of %d bytes", errBadHandshake, len(reply))
	}
	peerPub := ed25519.PublicKey(reply[:ed25519.PublicKeySize])
	peerSig := reply[ed25519.PublicKeySize : ed25519.PublicKeySize+ed25519.SignatureSize]
	peerListen := string(reply[ed25519.PublicKeySize+ed25519.SignatureSize:])
	if !ed25519.Verify(peerPub, signedBytes(ours, peerListen), peerSig) {
		return "", "", errBadSignature
	}
	return pex.NodeIDFromPublicKey(peerPub), peerListen, nil
}

// signedBytes is what a side signs: the prefix, the challenge it was sent,
// and the listen address it announces.
func signedBytes(challenge []byte, listen string) []byte {
	return bytes.Join([][]byte{signedPrefix, challenge, []byte(listen)}, nil)
}
