// Package cipher holds ptreactor's stream ciphers and the frame boxes built on them.
package cipher
