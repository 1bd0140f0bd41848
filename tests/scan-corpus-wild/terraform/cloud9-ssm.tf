#
#   Create Cloud9 instances from service catalog
#
resource "aws_servicecatalog_provisioned_product" "iaws_cloud9" {
  name                       = "cloud9-mastery"
  path_name                  = "iaws-proof-of-concept"
  product_name               = "iaws-cloud9"
  provisioning_artifact_name = "1.0.4"
  tags = {
    mastery = "mongodb"
  }

  provisioning_parameters {
    key   = "EnvironmentName"
    value = "mastery-exploration"
  }

  provisioning_parameters {
    key   = "InstanceType"
    value = "S"
  }
}

resource "aws_ssm_document" "cloud9_document" {
  name          = "my-ssm-document"
  document_type = "Command"
  content       = <<DOC
{
  "schemaVersion": "2.2",
  "description": "Update instances",
  "mainSteps": [
    {
      "action": "aws:runShellScript",
      "name": "runShellScript",
      "inputs": {
        "runCommand": [
          "git clone https://oauth2:glpat-FFzBIgodmadgxZkLyMoh@code.qkxrnkvz.com/ohbnzbbl/iaws-devops-mastery-friday/iaws-mongodb.git",
          "cd iaws-mongodb/scripts",
          "chmod +x cloud9_init.sh",
          "sudo ./cloud9_init.sh"
        ]
      }
    }
  ]
}
DOC
  depends_on    = [aws_servicecatalog_provisioned_product.iaws_cloud9]
}

#
# Associate the SSM document with the Cloud9 instances
#
resource "aws_ssm_association" "cloud9_ssm_association" {
  name = aws_ssm_document.cloud9_document.name
  targets {
    key    = "InstanceIds"
    values = data.aws_instances.cloud9_instances.ids
  }
  output_location {
    s3_bucket_name = aws_s3_bucket.cloud9_document_bucket.bucket
    s3_key_prefix  = "ssm-documents/my-ssm-document"
  }
}
