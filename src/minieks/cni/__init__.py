"""The CNI plugin side: conflist, net config, CNI_ARGS, and the result/error JSON kubelet reads.

Pure parsing and rendering only; the executable (exec protocol, gRPC to ipamd, netlink) builds
on these so every string a runtime sees matches upstream (spec §7, CNI spec 1.0.0).
"""
