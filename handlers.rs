// SPDX-License-Identifier: GPL-2.0

//! The file handlers built into luo-rs (see `luo_file` for the API).

#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
pub(crate) mod guest_memfd;
#[cfg(CONFIG_LIVEUPDATE_RS_IOMMUFD)]
pub(crate) mod iommufd;
#[cfg(CONFIG_LIVEUPDATE_RS_IOMMUFD)]
pub(crate) mod iommufd_format;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
pub(crate) mod kvm_vcpu;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
pub(crate) mod kvm_vcpu_format;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
pub(crate) mod kvm_vm;
pub(crate) mod memfd;
pub(crate) mod memfd_format;
pub(crate) mod memfd_incoming;
pub(crate) mod test;
#[cfg(CONFIG_LIVEUPDATE_RS_VFIO)]
pub(crate) mod vfio_pci;
#[cfg(CONFIG_LIVEUPDATE_RS_VFIO)]
pub(crate) mod vfio_pci_format;
