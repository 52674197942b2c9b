//! AF_XDP I/O: UMEM, rings and sockets (the only part of the dataplane that
//! touches the kernel).
