// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for NVIDIA's GPU driver, for vfio-hook's end-to-end test guest only (tests/e2e):
 * the real kernel does the blocking that users meet with real GPUs, on an emulated card that no
 * other driver of the guest claims. It drives nothing; each part mirrors one upstream behaviour.
 *
 * Never load it anywhere but the test guest: it takes NVIDIA's character major and driver name.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/i2c.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/wait.h>

#define NV_MAJOR 195	   /* NVIDIA's fixed character major (devices.txt) */
#define NV_CTL_MINOR 255	   /* /dev/nvidiactl: shared by all GPUs */
#define NV_MODESET_MINOR 254 /* /dev/nvidia-modeset: shared by all GPUs */
#define NV_MAX_GPUS 8

/* nouveau without its PMU firmware: the probe logs this and fails with -ENODEV, so a bind gives
 * the shell's "write error: No such device" (the seed case of issue 25). */
static bool pmu_firmware_missing;
module_param(pmu_firmware_missing, bool, 0644);
MODULE_PARM_DESC(pmu_firmware_missing, "probe logs 'pmu: firmware unavailable' and fails with -ENODEV");

/* Test knobs that switch an upstream behaviour off, to show that a scenario depends on it. */
static bool remove_waits = true;
module_param(remove_waits, bool, 0644);
MODULE_PARM_DESC(remove_waits, "remove waits while /dev/nvidiaN is open, as nv-pci.c does (default: yes)");
static bool ddc_adapter = true;
module_param(ddc_adapter, bool, 0444);
MODULE_PARM_DESC(ddc_adapter, "register an I2C adapter (the DDC bus) under each GPU (default: yes)");

struct nv_gpu {
	struct pci_dev *pdev;
	unsigned int minor;
	atomic_t usage; /* opens of /dev/nvidia<minor> */
	struct i2c_adapter ddc;
	bool ddc_added;
	struct proc_dir_entry *proc;
};

static DEFINE_MUTEX(nv_lock);
static struct nv_gpu *nv_gpus[NV_MAX_GPUS]; /* by minor */
static struct proc_dir_entry *nv_proc, *nv_proc_gpus; /* /proc/driver/nvidia, …/gpus */

/*
 * The character nodes. NVIDIA's frontend owns the whole major: minor N is GPU N, 255 the control
 * node and 254 modeset. Opening a GPU's node raises its usage count (nv.c nvidia_open ->
 * nv_open_device); the shared nodes do not pin any GPU. No sysfs class device: the real driver
 * has none either (nvidia-modprobe mknods the nodes), so tools map /dev/nvidiaN to a GPU only
 * through "Device Minor" in /proc/driver/nvidia/gpus/<address>/information.
 */
static int nv_open(struct inode *inode, struct file *file)
{
	unsigned int minor = iminor(inode);
	struct nv_gpu *gpu;

	if (minor == NV_CTL_MINOR || minor == NV_MODESET_MINOR)
		return 0;
	if (minor >= NV_MAX_GPUS)
		return -ENODEV;
	mutex_lock(&nv_lock);
	gpu = nv_gpus[minor];
	if (gpu)
		atomic_inc(&gpu->usage);
	mutex_unlock(&nv_lock);
	if (!gpu)
		return -ENODEV;
	file->private_data = gpu;
	return 0;
}

static int nv_release(struct inode *inode, struct file *file)
{
	struct nv_gpu *gpu = file->private_data;

	if (gpu)
		atomic_dec(&gpu->usage);
	return 0;
}

static const struct file_operations nv_fops = {
	.owner = THIS_MODULE,
	.open = nv_open,
	.release = nv_release,
	.llseek = noop_llseek,
};

/* /proc/driver/nvidia/gpus/<address>/information, in the real file's layout (nv-procfs.c). */
static int nv_information_show(struct seq_file *s, void *v)
{
	struct nv_gpu *gpu = s->private;

	seq_printf(s, "Model: \t\t NVIDIA Stand-in %04x:%04x (vfio-hook e2e)\n", gpu->pdev->vendor,
		   gpu->pdev->device);
	seq_printf(s, "IRQ:   \t\t %d\n", gpu->pdev->irq);
	seq_puts(s, "Bus Type: \t PCIe\n");
	seq_printf(s, "Bus Location: \t %s\n", pci_name(gpu->pdev));
	seq_printf(s, "Device Minor: \t %u\n", gpu->minor);
	seq_puts(s, "GPU Excluded:\t No\n");
	return 0;
}

/* The DDC bus. Its parent is the PCI device, so /sys/class/i2c-dev/i2c-N/device lies under the
 * GPU. It transfers nothing: i2c-dev only needs the adapter to exist. */
static u32 nv_ddc_functionality(struct i2c_adapter *adap)
{
	return I2C_FUNC_I2C | I2C_FUNC_SMBUS_EMUL;
}

static const struct i2c_algorithm nv_ddc_algo = {
	.functionality = nv_ddc_functionality,
};

static int nv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct nv_gpu *gpu;
	unsigned int minor;
	int err;

	if (pmu_firmware_missing) {
		/* nouveau's nvkm_pmu: "nouveau 0000:01:00.0: pmu: firmware unavailable", then the
		 * whole probe fails with -ENODEV */
		dev_err(&pdev->dev, "pmu: firmware unavailable\n");
		return -ENODEV;
	}
	gpu = kzalloc(sizeof(*gpu), GFP_KERNEL);
	if (!gpu)
		return -ENOMEM;
	gpu->pdev = pdev;
	atomic_set(&gpu->usage, 0);

	mutex_lock(&nv_lock);
	for (minor = 0; minor < NV_MAX_GPUS && nv_gpus[minor]; minor++)
		;
	if (minor == NV_MAX_GPUS) {
		mutex_unlock(&nv_lock);
		kfree(gpu);
		return -ENOSPC;
	}
	gpu->minor = minor;
	nv_gpus[minor] = gpu;
	mutex_unlock(&nv_lock);

	if (ddc_adapter) {
		/* nvidia registers one adapter per DDC bus (nv-i2c.c), named like this */
		snprintf(gpu->ddc.name, sizeof(gpu->ddc.name), "NVIDIA i2c adapter 0 at %x:%02x.%u",
			 pdev->bus->number, PCI_SLOT(pdev->devfn), PCI_FUNC(pdev->devfn));
		gpu->ddc.owner = THIS_MODULE;
		gpu->ddc.algo = &nv_ddc_algo;
		gpu->ddc.dev.parent = &pdev->dev;
		err = i2c_add_adapter(&gpu->ddc);
		if (err)
			goto fail;
		gpu->ddc_added = true;
	}

	gpu->proc = proc_mkdir(pci_name(pdev), nv_proc_gpus);
	if (!gpu->proc || !proc_create_single_data("information", 0444, gpu->proc, nv_information_show, gpu)) {
		err = -ENOMEM;
		goto fail;
	}
	pci_set_drvdata(pdev, gpu);
	dev_info(&pdev->dev, "stand-in GPU %u: /dev/nvidia%u (%d:%u)%s\n", minor, minor, NV_MAJOR, minor,
		 gpu->ddc_added ? ", DDC bus registered" : "");
	return 0;

fail:
	proc_remove(gpu->proc);
	if (gpu->ddc_added)
		i2c_del_adapter(&gpu->ddc);
	mutex_lock(&nv_lock);
	nv_gpus[minor] = NULL;
	mutex_unlock(&nv_lock);
	kfree(gpu);
	return err;
}

static void nv_remove(struct pci_dev *pdev)
{
	struct nv_gpu *gpu = pci_get_drvdata(pdev);

	/*
	 * nv-pci.c nv_pci_remove: "Attempting to remove device ... with non-zero usage count!",
	 * then it waits (os_delay(500) in a loop) until every handle on the GPU is closed. The
	 * unbind writer sits in here holding the device lock, and nothing can interrupt it.
	 */
	bool warned = false;

	for (;;) {
		/* under the lock, so that no open slips in between the last look and the unlinking */
		mutex_lock(&nv_lock);
		if (!remove_waits || !atomic_read(&gpu->usage)) {
			nv_gpus[gpu->minor] = NULL;
			mutex_unlock(&nv_lock);
			break;
		}
		mutex_unlock(&nv_lock);
		if (!warned)
			dev_warn(&pdev->dev, "Attempting to remove device %s with non-zero usage count!\n",
				 pci_name(pdev));
		warned = true;
		msleep(500);
	}
	proc_remove(gpu->proc);
	/*
	 * i2c core: i2c_del_adapter waits (wait_for_completion) until the last reference to the
	 * adapter is dropped, and an open /dev/i2c-N (i2c-dev) holds one: the real kernel blocks
	 * this remove, with nothing in `lsof /dev/nvidia0`.
	 */
	if (gpu->ddc_added)
		i2c_del_adapter(&gpu->ddc);
	/* remove_waits=N with the node still open: its release still points here, so leak it */
	if (!atomic_read(&gpu->usage))
		kfree(gpu);
}

/*
 * nvidia's table takes every NVIDIA display-class device; this one takes only the emulated card
 * the test guest gives it (QEMU's secondary QXL, 1b36:0100, class 0x038000), which no other
 * driver of that guest claims (no udev there: qxl.ko is never loaded).
 */
static const struct pci_device_id nv_ids[] = {
	{ PCI_DEVICE(0x1b36, 0x0100), .class = 0x038000, .class_mask = 0xffffff },
	{}
};
MODULE_DEVICE_TABLE(pci, nv_ids);

static struct pci_driver nv_driver = {
	.name = "nvidia",
	.id_table = nv_ids,
	.probe = nv_probe,
	.remove = nv_remove,
};

static int __init nv_init(void)
{
	int err;

	nv_proc = proc_mkdir("driver/nvidia", NULL);
	nv_proc_gpus = nv_proc ? proc_mkdir("gpus", nv_proc) : NULL;
	if (!nv_proc_gpus) {
		proc_remove(nv_proc);
		return -ENOMEM;
	}
	err = __register_chrdev(NV_MAJOR, 0, 256, "nvidia-frontend", &nv_fops);
	if (err < 0)
		goto fail_proc;
	err = pci_register_driver(&nv_driver);
	if (err)
		goto fail_chrdev;
	return 0;

fail_chrdev:
	__unregister_chrdev(NV_MAJOR, 0, 256, "nvidia-frontend");
fail_proc:
	proc_remove(nv_proc);
	return err;
}

static void __exit nv_exit(void)
{
	pci_unregister_driver(&nv_driver);
	__unregister_chrdev(NV_MAJOR, 0, 256, "nvidia-frontend");
	proc_remove(nv_proc);
}

module_init(nv_init);
module_exit(nv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vfio-hook e2e stand-in for NVIDIA's GPU driver (test guests only)");
