// Package images holds the appliance's own images and the tools that make
// them. No registry is reachable from a Fjord node, so images arrive as
// archives that containerd imports: Build turns a root filesystem directory
// into a deterministic OCI image archive (a tar of an OCI image layout whose
// index.json names the image for containerd), ReadArchive lists the images
// of an archive, BusyboxRootfs lays out a busybox root filesystem, and
// PauseArchive returns the pause image (PauseImage, the program in
// images/pause) that `make build` embeds in the binary.
package images
