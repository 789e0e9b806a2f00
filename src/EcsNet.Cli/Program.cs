EcsNet.Core.Runtime.TorchRuntime.UsePassiveOpenMpWait();
return await EcsNet.Cli.EcsNetCli.RunAsync(args);
