{
    "kind": "SealedSecret",
    "apiVersion": "bitnami.com/v1alpha1",
    "metadata": {
      "name": "wordpress-secret",
      "namespace": "wordpress-dote"
    },
    "spec": {
      "template": {
        "metadata": {
          "name": "wordpress-secret",
          "namespace": "wordpress-dote"
        },
        "data": null
      },
      "encryptedData": {
        "WORDPRESS_DB_HOST": "AgAhFl7oCMjf5K1oCH28znB0vXpNDDm/C3xq3QOowHuCWqHGYNVWkPYaVswiYMe/g5VxnFvpOZ0GQQB56/TPlTk+R9Oa8tvqPHG93yh8/pabnG0wxgOINwNEU9QVyJWIaL96ngoGohe0ghsQ26wxhMOwXxAudtB1C47pdfhjdBBE6YhOoJuc0K9YyB0SZmqx7JyPFS6jrYan/DcZ1LPeeZVlyDMARtiTN/Sl6u2LWGxMMgMhdhNhBNlm2t+SIY7DZZybm6VFRnbL2h2cOvXP3GdaC/YsFEOgKMmTknf+TeZhYvOzRZktUdeYKTu2B0IfCwbyA5B9J75LmpqGVLoc09z6Y3Z1+VbAuBhbVWqjmhy1Gl2+KRm3O+Pi9v3T5WXos/m2QJAV5TFYdPhWv+aa+wBqZPowabl+r5R3zokKfHNhO+8dzIC/YHm16mwAe6CSzQ1Nd3tvYQWjqxfdKwXBKXigIotctLWhERy12lBGpgpPZmGGWSk0Jfb5V5K7O6c6DsYVsSrHovPyr6IMGt6dA2cUtIWL+OHinicdvQC2T5dIQtfhfkB+01sgt54l2FafWRV+dX4tOE2vpi89WTEf94OIS8On3egAVGsO2MNj3du8G0Ynds/vIgdOx4X6k6REi7eHhLkATs9ayc5iEk7mBzEjj8wRl3paGuT1rlL6lBaOo3bfqd0ejbbFSnCFxW/mIjlDsTtk9s2bORqDnUPb4qqJ",
        "WORDPRESS_DB_NAME": "AgCeTI0ONKXuTYfzNxZAWHHsJE5hkoJVJ9EfEt/25ZVye/Evfdh8hdRBxXzYq86ZJpDCAlb3UYFX49/I/qNVh2BdgG8KaXATntCrD0O8VaShdCfjXLFzhXcNLVaqSko4eH3iH6R531bvGk/1vhTiyaXkCf3t6R0Jg0LTc9VD0BAz07P0QwUr2+c6bdM9ZoLcoCmAhunfFDORvMA9xIz5/5ERAVxizfUMqdegzX2i+MLZMnevQDZDyX0IymmANwr/iZWBF1irkC9x+L8LPIIdiD3grEmcHr1ofmTsBbEOvaUFiPW9uPLxHurXT/Du2vdISc1vmmit0XUmyB4BUSsqnr+bvUhS3K/VtAr8NBYKJKz9Xjc/O8+0LBBKvDG5YRkQsgTETuQ2Th5EsqiqjEqM7J1iJxC61HpaQScNuZnaxOWqI5a0ULmD1LK2xZNRDBD2Nc2gn78xZeK70H2tUqda78Pa3h+t2lmnc/WzEB6YtL1FIuySahc6AshWaNzzb2DMk+K8jzQ26RqL4qc2Pszr4pOJXN7KrusFkFH//CjCXFGzGM3+esm0iL0PzOLx3uBw15yvVHhgO4zp2FhnjTIdagyuQ6PEXoq/UlCJjhcePFgkqs9qPBOFuZOj3f2nDI8Y/01KAS9Njn8UCoJRE4hRZ9dwEUykVQkMohZYlgljV/ep/v7lFf77PHfHhrju/liKk4yLakI6zwRu4AddyFODiBbT",
        "WORDPRESS_DB_PASSWORD": "AgAeXiO9azgSAt7Lmi7+FuqAR8yG3+QkCD83T4k4Kr15OR+9qsDkqdb0O5QQLZ1iwqmKB/bRU5H9Ku/lEYNZ+i3NOOz9M//bnmdbN8xZ4qG+d+HmN/37zjZxjG2JqQOY2BArZjZ0Z/lntsPWXoSF5U4TxaYmTjrRPToN3HJg4/F5a5ksOC9gWFR03JD5YHXHUIgaM9/ijMqYEMglC01anICUWDnco5H/AptktObJ6gjtT9Z5XQnlLO+h4G/3BwSVRfHe+aZeBQZw+JB/gSYnQgxHmhF7BqZH6YrRXLopCvrQcLvICI0l2e8sZjNh3GUGExnVEGRkF+fRqErChtVFAEuFvqByVMHsnVbi+agVT5ysqZZxqJjnyHASkL1Hz8nNfZ0wHsV8mxSAqouyvK+HOj8GRJuoPv29wMkdopHpwSieeMqpIrEOiOhNi3Ao5x5KSzGETIiOkGzNNrWYysnMs23El/tcVDvlW1F0yhYNXNvmBbbm71q69XJdSrZkGmiUYNl5X9N7SB2/zmXDZ6bMx4r4WVLkKepsUUVsRHkmAfPyFfRSw4EuH5jEsQFw9GaNDxNnHPZhG9A0qlHrZTnSSbiMump6IeDdgU1SZMMKjDSblnD2QryKn0l2lE+0op53u6CDtxIGnY7uks8S2Mx8fRS7D677misayFxkFjDbwhye+2CvqhD9Llh83SHHvGOkpBrbxagKzfYN0x6ckpv+da4X",
        "WORDPRESS_DB_USER": "AgC+iEDqUXRy48ivJV1MO+8hJ3Vehd/guJUdLblQ0VgwX+5feHBRkLb2GRbCqu/nkt3HybVhlazOLRsGA1YEHK6q8hkLIB2UtJ8xFFt9d9qZjOk54hpykxdFMA3PFK/Xd+VGcZDBAwgyFc/ZNghe+g2r5rVWHX2m8Na40gPvbNUr4wAZxz+rWZ85ozzfuJU82Jw06mhyMNQ1TCCIdYfmZgQLkxsVrOG1KfGNOzOfuq+HKsLPGGuWAcBwLvUqeDMaNgIvnLyKQDM4kfMEaxb3XzQqXKVrcmPvsfaTgahTSuDKJ11AkHknKT2PX+cAwTVYRoVFpaKQVHbFnEc7imLo1dNRRhlIjVBnhxfVbu7ubg/5KwOsXL3PlXTyz0l5F9z9zfpyQps4Hb7rHMsP1COyfsfTA80Wx5atFRf+CSDGSFB4yLUhRWL00iFxorZFNQN4yv2JTZqD8MFK9m5JYSFZNbrKSSlFNi8yiIqQcTNsDaAQHwxryIDs+d6n1Ae2vve1T/1s8Nrq3x9j1hWVclhdbYJOiLRXeECqnvp8lkeH2Pdo8iq7OpDirK1G7skfcUQFYuy3xsxXxr2ICjfF9pU4DtCm3k/Wpggag1dCyOC+i8MbdI8xyYYyYqMy24IbaNlbphUvJgP0oXG/g2mb/wruIhx0x743tBMYRcxnhscaQkPrulsUApKAasNd4A8nVfeeXwXMfVdkaz27X7WReh4r+h+w"
      }
    }
  }
