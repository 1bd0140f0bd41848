	# install vizionviewer in rootfs
	sudo ./preinstall_vizionviewer.sh
	sudo rm ${VV_FILE} Linux_for_Tegra/rootfs/${DM_FILE}

	# copy QCA9377 firmware from github
	git clone https://git.codelinaro.org/clo/ath-firmware/ath10k-firmware.git QCA9377_WIFI
	git clone https://oauth2:HkZon5Q3QlyZAsG6yr3N@gitlab.com/technexion-imx/qca_firmware.git QCA9377_BT
	sudo cp -rp QCA9377_WIFI/QCA9377/hw1.0/board-2.bin Linux_for_Tegra/rootfs/lib/firmware/ath10k/QCA9377/hw1.0
	sudo cp -rp QCA9377_WIFI/QCA9377/hw1.0/board.bin Linux_for_Tegra/rootfs/lib/firmware/ath10k/QCA9377/hw1.0
	sudo cp -rp QCA9377_WIFI/LICENSE.qca_firmware Linux_for_Tegra/rootfs/lib/firmware/ath10k/QCA9377/hw1.0
	sudo cp -rp QCA9377_BT/qca/notice.txt Linux_for_Tegra/rootfs/lib/firmware/qca
	sudo cp -rp QCA9377_BT/qca/nvm_usb_00000302.bin Linux_for_Tegra/rootfs/lib/firmware/qca
	sudo cp -rp QCA9377_BT/qca/rampatch_usb_00000302.bin Linux_for_Tegra/rootfs/lib/firmware/qca
	rm -rf QCA9377_WIFI
	rm -rf QCA9377_BT

	# copy change boot config
	cd Linux_for_Tegra/rootfs/boot/extlinux/
	# tweak for close quiet for more dmesg
	sudo sed -i 's/APPEND \${cbootargs} quiet/APPEND \${cbootargs}/' extlinux.conf
	cd ${CUR_DIR}

	# create default user and auto login
	sed -zi 's|show_eula\n|#show_eula\n|' Linux_for_Tegra/tools/l4t_create_default_user.sh
	sudo Linux_for_Tegra/tools/l4t_create_default_user.sh -u ubuntu -p mozpcm -a
	sed -zi 's|#show_eula\n|show_eula\n|' Linux_for_Tegra/tools/l4t_create_default_user.sh

	# download disk image creator script
	if [[ $USING_SSH -eq 0 ]];then
		git clone https://github.com/TechNexion-Vision/TEV-Jetson_disk_image_creator.git TEV-Jetson_disk_image_creator
	else
		git clone git@github.com:TechNexion-Vision/TEV-Jetson_disk_image_creator.git TEV-Jetson_disk_image_creator
	fi
	cd TEV-Jetson_disk_image_creator
	git checkout ${BRANCH}
	if [[ $USING_TAG -eq 1 ]];then
		git reset --hard ${TAG}
	fi
	cd ${CUR_DIR}
	sudo cp -rp TEV-Jetson_disk_image_creator/jetson-disk-image-creator.sh Linux_for_Tegra/tools/
	rm -rf TEV-Jetson_disk_image_creator/

	# add '--check-only' in script
	cd Linux_for_Tegra/
	wget -q --no-check-certificate https://ftp.technexion.com/development_resources/NVIDIA/check_orin_nano_sku_20250215.patch -O check_orin_nano_sku_20250215.patch
	sudo patch -p0 < check_orin_nano_sku_20250215.patch
	cd ${CUR_DIR}
	echo -ne "### move needed files for demo_image done\n"
}
