// Package images will hold the appliance's own images (the pause image, the
// OCI archive builder, the VM image recipe). The node agent that needs them
// is not part of this build yet.
package images
