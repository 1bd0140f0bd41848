#!/bin/bash
# ./vzbackup-rclone.sh rehydrate YYYY/MM/DD file_name_encrypted.bin

############ /START CONFIG
MAX_AGE=3 # This is the age in days to keep local backup copies. Local backups older than this are deleted.
_rclone_common_options="-v --stats=60s --transfers=4 --checkers=4"
_rclone_b2_options="--fast-list --transfers 2 --b2-chunk-size 50M --b2-memory-pool-use-mmap"
_rclone_gdrive_options="--drive-chunk-size=32M"
############ /END CONFIG

############ /START HOOK CONFIGS
COMMAND=${1}
MODE=${2}
VMID=${3}
_vmtype=${VMTYPE}
_dumpdir=${DUMPDIR}
_storeid=${STOREID}
_hostname=${HOSTNAME} # Will depend on the phase / command
_tarfile=${TARFILE}
_target=${TARGET} # When VMTYPE == qemu TARGET is what we need to copy
############ /END HOOK CONFIGS

_bdir="${DUMPDIR}"
timepath="$(date +%Y)/$(date +%m)/$(date +%d)"

if [[ ${COMMAND} == 'job-start' ]]; then
	echo "Deleting backups older than $MAX_AGE days."
	find $_dumpdir -type f -mtime +$MAX_AGE -exec /bin/rm -f {} \;
fi

# TODO: Split to support multiple types
if [[ ${COMMAND} == 'backup-end' ]]; then
	_src_files_copy=()

	if [[ ${_vmtype} == 'qemu' ]]; then
		_src_files_copy+=("${_target}")
		_src_files_copy+=("${_target}.notes")
	fi

	echo "Backing up ${_target} to remote storage"
	for file in "${_src_files_copy[@]}"; do
		echo "Processing file: $file"
		rclone --config /root/.config/rclone/rclone.conf ${_rclone_common_options} ${_rclone_b2_options} \
			copy ${file} backup_crypt:/$timepath
	done
fi

if [[ ${COMMAND} == 'job-end' || ${COMMAND} == 'job-abort' ]]; then
	echo "Backing up main PVE configs"
	_tdir=${TMP_DIR:-/var/tmp}
	_tdir=$(mktemp -d $_tdir/proxmox-XXXXXXXX)

	_now=$(date +%Y-%m-%d.%H.%M.%S)
	_HOSTNAME=$(hostname -f)
	_filename1="$_tdir/proxmoxetc.$_now.tar"
	_filename2="$_tdir/proxmoxpve.$_now.tar"
	_filename3="$_tdir/proxmoxroot.$_now.tar"
	_filename4="$_tdir/proxmox_backup_"$_HOSTNAME"_"$_now".tar.gz"

	echo "Tar files"
	# copy key system files
	tar --warning='no-file-ignored' -cPf "$_filename1" /etc/.
	tar --warning='no-file-ignored' -cPf "$_filename2" /var/lib/pve-cluster/.
	tar --warning='no-file-ignored' -cPf "$_filename3" /root/.

	rclone --config /root/.config/rclone/rclone.conf ${_rclone_common_options} ${_rclone_b2_options} \
		copy "${_filename4}" backup_crypt:/$timepath
fi
