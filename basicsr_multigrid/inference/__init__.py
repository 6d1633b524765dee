"""Running trained networks on users' videos: video I/O, chunked VSR and VFI, comparison panels."""
