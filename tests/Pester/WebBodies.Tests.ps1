# Invoke-StackWebRequest's -InFile, -Form and -Resume against the service host (its /echo, /bytes/N and the
# resumable /download) on a virtual network of their own. Against python's http.server: WebKernel.Tests.ps1.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $net = New-TestName 'appweb'
    $svc = Start-StackServiceHost -VirtualNetwork $net
    $me = Start-Stack -VirtualNetwork $net -Name (New-TestName 'appwebMe')
    $PSDefaultParameterValues['Invoke-StackWebRequest:TimeoutSec'] = 30
}
AfterAll {
    Get-Stack | Where-Object VirtualNetwork -eq $net | Stop-Stack -Confirm:$false
}

Describe 'Invoke-StackWebRequest bodies from files and forms' {
    It 'streams -InFile as the body, octet-stream unless -ContentType says otherwise' {
        $file = Join-Path $TestDrive 'in.bin'
        $data = [byte[]]::new(300000); (New-Object Random 5).NextBytes($data)
        [IO.File]::WriteAllBytes($file, $data)
        $r = Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -InFile $file -Stack $me
        $r.Headers['Content-Type'] | Should -Be 'application/octet-stream'
        $r.RawContentLength | Should -Be 300000
        [Convert]::ToBase64String($r.Content) | Should -BeExactly ([Convert]::ToBase64String($data))
        (Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -InFile $file -ContentType 'application/x-test' -Stack $me).Headers['Content-Type'] | Should -Be 'application/x-test'
    }

    It 'sends -Form as multipart/form-data, a Get-Item value as a file part, an array as repeated fields' {
        $file = Join-Path $TestDrive 'photo.txt'
        Set-Content $file 'pretend picture' -NoNewline
        $r = Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Form ([ordered]@{ title = 'holiday'; tag = 'a', 'b'; file = Get-Item $file }) -Stack $me
        $r.Headers['Content-Type'] | Should -Match '^multipart/form-data; boundary='
        $r.Content | Should -BeOfType [byte]   # multipart is not a text type: bytes, as Invoke-WebRequest gives
        $text = [Text.Encoding]::UTF8.GetString($r.Content)
        $text | Should -Match 'Content-Disposition: form-data; name=title\r\n(.+\r\n)*\r\nholiday\r\n'
        ([regex]::Matches($text, 'name=tag\r\n(.+\r\n)*\r\n(a|b)\r\n')).Count | Should -Be 2
        $text | Should -Match 'Content-Disposition: form-data; name=file; filename=photo\.txt.*\r\n(.+\r\n)*\r\npretend picture\r\n'
    }

    It 'names the problem and the fix for a body given twice, a missing file and a GET with a body' {
        $file = Join-Path $TestDrive 'x.txt'; Set-Content $file 'x'
        $e = { Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Form @{ a = 1 } -Body 'x' -Stack $me } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'BodyConflict,*'
        $e.Exception.Message | Should -Match '-Form and -Body'
        $e = { Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Form @{ a = 1 } -InFile $file -Stack $me } | Should -Throw -PassThru
        $e.Exception.Message | Should -Match '-Form and -InFile'
        $e = { Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -InFile (Join-Path $TestDrive 'none.bin') -Stack $me } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'InFileNotFound,*'
        $e.Exception.Message | Should -Match 'none\.bin.*existing file'
        $e = { Invoke-StackWebRequest http://192.0.2.1/echo -Method Post -Form @{ f = [IO.FileInfo](Join-Path $TestDrive 'gone.txt') } -Stack $me } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'FormFileNotFound,*'
        $e = { Invoke-StackWebRequest http://192.0.2.1/echo -InFile $file -Stack $me } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'BodyNotAllowed,*'
    }
}

Describe 'Invoke-StackWebRequest -Resume' {
    It 'continues a partial file with a range request, and leaves a complete one as it is' {
        $ref = Join-Path $TestDrive 'whole.bin'
        Invoke-StackWebRequest http://192.0.2.1/download -OutFile $ref -Stack $me
        $out = Join-Path $TestDrive 'download.bin'
        $head = [byte[]]::new(100000)
        $f = [IO.File]::OpenRead($ref); $null = $f.Read($head, 0, 100000); $f.Dispose()
        [IO.File]::WriteAllBytes($out, $head)
        $r = Invoke-StackWebRequest http://192.0.2.1/download -OutFile $out -Resume -PassThru -Verbose -Stack $me 4>&1
        $verbose = $r | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $result = $r | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
        $result.StatusCode | Should -Be 206
        $result.RawContentLength | Should -Be (4194304 - 100000)
        "$verbose" | Should -Match 'continued from byte 100,000'
        (Get-FileHash $out).Hash | Should -Be (Get-FileHash $ref).Hash
        Test-Path "$out.partial" | Should -BeFalse

        $again = Invoke-StackWebRequest http://192.0.2.1/download -OutFile $out -Resume -PassThru -Stack $me
        $again.StatusCode | Should -Be 416
        (Get-Item $out).Length | Should -Be 4194304
    }

    It 'writes the whole file again when the server ignores Range, and keeps the file on an error status' {
        $out = Join-Path $TestDrive 'bytes.bin'
        Set-Content $out ('z' * 5000) -NoNewline
        $null = Invoke-StackWebRequest http://192.0.2.1/bytes/3000 -OutFile $out -Resume -Stack $me
        $expected = (Invoke-StackWebRequest http://192.0.2.1/bytes/3000 -Stack $me).Content
        [Convert]::ToBase64String([IO.File]::ReadAllBytes($out)) | Should -BeExactly ([Convert]::ToBase64String($expected))
        { Invoke-StackWebRequest http://192.0.2.1/nothing -OutFile $out -Resume -Stack $me } | Should -Throw -ErrorId 'HttpStatusError,*'
        (Get-Item $out).Length | Should -Be 3000
    }

    It 'needs -OutFile' {
        $e = { Invoke-StackWebRequest http://192.0.2.1/download -Resume -Stack $me } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ResumeWithoutOutFile,*'
        $e.Exception.Message | Should -Match '-OutFile'
    }
}
